"""The configuration chain, checks and the generated template/reference."""

import os
import textwrap

import pytest

from elektronn.config import ConfigError, load_config, missing_warning
from elektronn.config.chain import USER_CONFIG_ENV
from elektronn.config.options import OPTIONS, OPTIONS_BY_NAME
from elektronn.config.reference import GENERATED

MINIMAL = """
save_name = "t"
save_path = {save_path!r}
n_dim = 2
desired_input = 40
filters = [6, 4]
pool = [2, 1]
nof_filters = [4, 4]
batch_size = 2
n_lab = 2
n_steps = 10
max_runtime = 60
monitor_batch_size = 4
SGD_params = dict(LR=0.01, momentum=0.9)
mode = "img-img"
data_path = "data/"
label_path = "data/"
d_files = [("raw.h5", "raw")]
l_files = [("lab.h5", "lab")]
"""


def write_config(tmp_path, extra="", name="cfg.py"):
    path = tmp_path / name
    path.write_text(MINIMAL.format(save_path=str(tmp_path / "runs")) + textwrap.dedent(extra))
    return path


def test_every_option_of_the_specification_is_in_the_table():
    spec_names = [
        "save_path", "plot_on", "print_status", "device", "param_save_h", "initial_prev_h",
        "prev_save_h", "save_name", "overwrite", "param_file", "activation_func", "batch_size",
        "dropout_rates", "n_dim", "desired_input", "filters", "pool", "nof_filters",
        "pooling_mode", "MFP", "rnn_layer_kwargs", "MLP_layers", "target", "mode",
        "background_processes", "n_lab", "data_path", "label_path", "d_files", "l_files",
        "cube_prios", "valid_cubes", "example_ignore_threshold", "grey_augment_channels",
        "use_example_weights", "flip_data", "anisotropic_data", "lazy_labels", "warp_on",
        "pre_process", "zchxy_order", "border_mode", "upright_x", "downsample_xy",
        "preview_data_path", "preview_kwargs", "data_class_name", "data_load_kwargs",
        "data_batch_kwargs", "n_steps", "max_runtime", "history_freq", "monitor_batch_size",
        "weight_decay", "class_weights", "label_prop_thresh", "optimizer", "LR_decay",
        "LR_schedule", "SGD_params", "RPROP_params", "CG_params", "LBFGS_params", "Adam_params",
    ]  # fmt: skip
    beyond_the_original = [
        "random_seed", "data_in_memory", "precision", "channels_last", "torch_compile",
        "architecture", "unet_n_convs", "unet_upsampling", "unet_batch_norm", "elastic_deform",
        "elastic_spacing", "elastic_strength", "loggers", "affinity_offsets", "unlabelled_id",
        "affinity_dice", "lsd_sigma",
    ]  # fmt: skip
    assert sorted(spec_names + beyond_the_original) == sorted(OPTIONS_BY_NAME)
    assert all(o.doc and o.mode in ("", "!", "$") for o in OPTIONS)


def test_spec_defaults_win_over_the_original_code():
    assert OPTIONS_BY_NAME["desired_input"].default == 200
    assert OPTIONS_BY_NAME["history_freq"].default == [2000]
    assert OPTIONS_BY_NAME["SGD_params"].default == {"LR": 0.001, "momentum": 0.9}


@pytest.mark.parametrize("path, render", GENERATED.items(), ids=lambda p: getattr(p, "name", ""))
def test_generated_files_match_the_options_table(path, render):
    assert path.read_text() == render(), (
        f"{path} drifted from the options table: run python -m elektronn.config.reference --write"
    )


def test_template_is_a_valid_user_defaults_file(tmp_path, monkeypatch):
    template = next(p for p in GENERATED if p.suffix == ".py")
    monkeypatch.setenv(USER_CONFIG_ENV, str(template))
    config = load_config(write_config(tmp_path))
    assert config.n_steps == 10


def test_chain_precedence_master_user_config_set(tmp_path, monkeypatch):
    user = tmp_path / "user.config"
    user.write_text("LR_decay = 0.5\nmonitor_batch_size = 20\nprint_status = False\n")
    monkeypatch.setenv(USER_CONFIG_ENV, str(user))
    config = load_config(write_config(tmp_path), ["LR_decay=0.9", "SGD_params=dict(LR=0.5)"])
    assert config.print_status is False  # user default over master
    assert config.monitor_batch_size == 4  # training config over user default
    assert config.LR_decay == 0.9  # --set over everything
    assert config.SGD_params == {"LR": 0.5}
    assert config.prev_save_h == 3.0  # master default


def test_set_accepts_bare_strings(tmp_path):
    config = load_config(write_config(tmp_path), ["save_name=run7"])
    assert config.save_name == "run7"
    assert config.save_dir == str(tmp_path / "runs" / "run7")


def test_misspelt_option_names_file_and_closest(tmp_path):
    path = write_config(tmp_path, "nof_filter = [3, 3]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and "'nof_filter'" in message and "'nof_filters'" in message


def test_misspelt_set_option(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'n_steps'"):
        load_config(write_config(tmp_path), ["n_step=5"])


def test_modules_and_underscore_names_are_ignored(tmp_path):
    extra = """
    import os
    import numpy as np
    _helper = [i for i in range(3)]
    d_files = [("raw_%i.h5" % _i, "raw") for _i in range(2)]
    l_files = [("lab_%i.h5" % _i, "lab") for _i in range(2)]
    """
    config = load_config(write_config(tmp_path, extra))
    assert len(config.d_files) == 2


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ("n_steps = 'many'", "'n_steps'"),
        ("mode = 'foo'", "'mode'"),
        ("filters = [6, 4, 3]", "one entry per conv layer"),
        ("filters = [3, 3]\npool = [2, 2]", "field of view"),
        ("MLP_layers = [10]", "img-img"),
        ("dropout_rates = [0.5]", "dropout_rates"),
        ("activation_func = 'softplus'", "activation_func"),
        ("class_weights = [1.0]", "class_weights"),
        ("warp_on = 2.0", "warp_on"),
        ("LR_schedule = [100]", "LR_schedule"),
        ("SGD_params = dict(lr=0.1)", "'lr'"),
        ("l_files = []", "l_files"),
        ("lazy_labels = True\nmode = 'img-scalar'\nMLP_layers = [5]", "lazy_labels"),
        ("n_steps = 0", "Option 'n_steps' is 0, so the run would make no update step"),
        ("max_runtime = -1", "Option 'max_runtime' is -1, so the run would make no update"),
    ],
)
def test_bad_values_give_one_paragraph_errors(tmp_path, extra, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, extra))
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_syntax_error_reports_line_number(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("n_steps = 10\nfilters = [6, 4\nsave_name = 'x'\n")
    with pytest.raises(ConfigError, match=r"line \d"):
        load_config(path)


def test_runtime_error_in_config_reports_line(tmp_path):
    path = write_config(tmp_path, "n_steps = 1 / 0\n")
    with pytest.raises(ConfigError, match="ZeroDivisionError"):
        load_config(path)


def test_missing_mandatory_values_give_one_warning(tmp_path):
    path = tmp_path / "sparse.py"
    path.write_text("save_name = 'x'\nfilters = [6, 4]\npool = [2, 1]\nnof_filters = [2, 2]\n")
    config = load_config(path)
    warning = missing_warning(config)
    assert warning.startswith("WARNING")
    for name in ("n_steps", "batch_size", "d_files", "SGD_params"):
        assert name in warning


def test_normalisation_of_per_layer_values(tmp_path):
    config = load_config(
        write_config(tmp_path, "dropout_rates = 0.2\nhistory_freq = 50\nMFP = True\n")
    )
    assert config.activation_func == ["relu", "relu"]
    assert config.pooling_mode == ["max", "max"]
    assert config.dropout_rates == [0.2, 0.2]
    assert config.MFP == [True, True]
    assert config.history_freq == [50]
    assert config.weight_decay == 0.0


def test_monitor_batch_size_rounded_down_to_batch_multiple(tmp_path):
    config = load_config(write_config(tmp_path, "batch_size = 3\nmonitor_batch_size = 10\n"))
    assert config.monitor_batch_size == 9


def test_relative_data_paths_resolve_against_config_folder(tmp_path):
    config = load_config(write_config(tmp_path))
    assert config.data_path == os.path.join(str(tmp_path), "data/")


def test_architecture_is_computed_from_user_order(tmp_path):
    extra = """
    n_dim = 3
    filters = [[4, 4, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [2, 2, 1]]
    pool = [[2, 2, 1], [2, 2, 1], 1, 1, 1]
    nof_filters = [10, 25, 40, 50, 60]
    desired_input = [127, 127, 7]
    """
    config = load_config(write_config(tmp_path, extra))
    assert config.arch.input_shape == (7, 127, 127)
    assert config.arch.output_shape == (3, 25, 25)
