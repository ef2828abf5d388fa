"""``elektronn-train`` as a user runs it: dry runs, bad input, the save directory."""

import os

import numpy as np
import pytest
from makers import write_h5
from tiny import run_cli, tiny_config

from elektronn.data.synthetic import build_membrane_volume
from elektronn.train.cli import shipped_examples

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers


def test_dry_run_prints_architecture_and_data(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path), "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "FOV" in out or "field of view" in out.lower()
    assert "raw_0.h5" in out and "(64, 64, 4)" in out
    assert "MiB of RAM" in out
    assert not (tmp_path / "runs").exists(), "a dry run must not create the save directory"


def test_shipped_example_found_by_name():
    result = run_cli("demo", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "demo.py" in result.stdout


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ("nof_filter = [3, 3]\n", "Did you mean 'nof_filters'"),
        ("n_steps = 'ten'\n", "'n_steps'"),
        ("filters = [3, 3]\npool = [2, 2]\n", "field of view"),
        ("mode = 'foo'\n", "'mode'"),
    ],
)
def test_bad_config_exits_2_with_one_paragraph(tmp_path, extra, fragment):
    result = run_cli(tiny_config(tmp_path, extra), "--dry-run")
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_config_file_exits_2(tmp_path):
    result = run_cli(tmp_path / "nope.py")
    assert result.returncode == 2
    assert "nope.py" in result.stderr and "Traceback" not in result.stderr


def test_missing_gpu_is_a_clear_error(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path), "--gpu=7")
    assert result.returncode == 2
    assert "--gpu=7" in result.stderr


def test_overwrite_false_refuses_existing_save_dir(tmp_path, tiny_data):
    existing = tmp_path / "runs" / "tiny"
    existing.mkdir(parents=True)
    (existing / "keep.txt").write_text("precious")
    result = run_cli(tiny_config(tmp_path, "overwrite = False\n"))
    assert result.returncode == 2
    assert "overwrite=False" in result.stderr
    assert sorted(os.listdir(existing)) == ["keep.txt"]


def test_training_run_writes_save_directory(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path), "--set", "n_steps=11", "--gpu=false")
    assert result.returncode == 0, result.stderr + result.stdout
    save = tmp_path / "runs" / "tiny"
    assert (save / "Backup" / "config.py").read_text() == tiny_config(tmp_path).read_text()
    resolved = (save / "Backup" / "resolved_config.py").read_text()
    assert "n_steps = 11" in resolved and "SSGD" not in resolved
    assert (save / "tiny-LAST.param").is_file()
    assert (save / "tiny_end.param").is_file()
    for kind in ("timeline", "history", "errors"):
        assert (save / "Backup" / f"tiny.{kind}.npy").is_file()
    history = np.load(save / "Backup" / "tiny.history.npy")
    assert list(history[:, 0]) == [0, 5, 10]
    status_lines = [line for line in result.stdout.splitlines() if line[:5].isdigit()]
    assert [line[:5] for line in status_lines] == ["00000", "00005", "00010"]
    assert "valid=" in status_lines[0] and "it/s" in status_lines[0]
    assert (save / "tiny.Errors.png").is_file()


def test_max_runtime_stops_the_run(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path, "n_steps = 10**9\nmax_runtime = 3\n"))
    assert result.returncode == 0, result.stderr
    assert "max_runtime" in result.stdout
    assert (tmp_path / "runs" / "tiny" / "tiny_end.param").is_file()


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "RPROP", "CG", "LBFGS"])
def test_every_optimizer_trains_through_the_cli(tmp_path, tiny_data, optimizer):
    result = run_cli(tiny_config(tmp_path, f"optimizer = {optimizer!r}\nweight_decay = 1e-4\n"),
                     "--set", "n_steps=6")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    save = tmp_path / "runs" / "tiny"
    assert (save / "tiny_end.param").is_file()
    timeline = np.load(save / "Backup" / "tiny.timeline.npy")
    assert len(timeline) == 6 and np.isfinite(timeline[:, 3]).all()
    assert (save / "Backup" / "tiny.CGtimeline.npy").is_file() == (optimizer == "CG")


def test_status_line_without_validation_data_says_nan(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path, "valid_cubes = []\n"), "--set", "n_steps=1")
    assert result.returncode == 0, result.stderr
    assert "valid=nan%" in result.stdout


def test_dry_run_ram_estimate_counts_z_ranges(tmp_path, tiny_data):
    extra = "d_files = [('raw_0.h5', 'raw', (0, 2))]\nl_files = [('lab_0.h5', 'lab', (0, 2))]\n"
    result = run_cli(tiny_config(tmp_path, extra + "valid_cubes = []\n"), "--dry-run")
    assert result.returncode == 0, result.stderr
    # 64*64*2 image voxels * 4 bytes + label voxels * 2 bytes = 48 KiB
    assert "0.05 MiB of RAM" in result.stdout and "z(0, 2)" in result.stdout


def test_dry_run_says_when_the_data_stays_on_disk(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path, "data_in_memory = False\n"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "stays on disk (data_in_memory = False)" in result.stdout
    assert "needs about" not in result.stdout


def test_dry_run_checks_the_input_patch_against_every_cube(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path, "desired_input = 80\n"), "--dry-run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "raw_0.h5" in result.stderr and "smaller than the net's input patch" in result.stderr
    assert "Traceback" not in result.stderr


def test_dry_run_checks_the_paths_of_a_data_class(tmp_path):
    kwargs = "data_load_kwargs=dict(path='nowhere/mnist.pkl.gz')"
    result = run_cli("mnist_cnn", "--dry-run", "--set", kwargs, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "MNISTData would get path='nowhere/mnist.pkl.gz'" in result.stderr
    assert f"relative paths are taken from {tmp_path}" in result.stderr


def test_new_config_trains_once_its_data_files_exist(tmp_path):
    config = tmp_path / "my_config.py"
    written = run_cli("--new-config", config)
    assert written.returncode == 0 and config.is_file(), written.stderr
    assert run_cli("--new-config", config).returncode == 2  # never replaces a file
    raw, labels = build_membrane_volume((160, 160, 30), n_cells=30)
    (tmp_path / "data").mkdir()
    write_h5(tmp_path / "data" / "train-volume.h5", raw=raw)
    write_h5(tmp_path / "data" / "train-labels.h5", labels=labels)
    result = run_cli(config, "--set", f"save_path={tmp_path}", "--set", "n_steps=2",
                     "--set", "monitor_batch_size=2", "--gpu=false")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert "does not set these options" not in result.stdout + result.stderr
    assert (tmp_path / "my_membranes" / "my_membranes_end.param").is_file()


def write_zarr_cubes(folder):
    """The tiny cubes as a zarr v3 store (axes named z, y, x) and as OME-Zarr images."""
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_image

    for i in range(2):
        raw, labels = build_membrane_volume((64, 64, 4), n_cells=12, seed=i)
        zyx = [np.ascontiguousarray(a.transpose(2, 1, 0)) for a in (raw, labels)]
        group = zarr.open_group(str(folder / f"cube_{i}.zarr"), mode="w", zarr_format=3)
        for key, array in zip(("raw", "lab"), zyx, strict=True):
            group.create_array(key, data=array, dimension_names=["z", "y", "x"])
        ome = zarr.open_group(str(folder / f"raw_{i}.ome.zarr"), mode="w", zarr_format=3)
        write_image(zyx[0], ome, axes="zyx", scale_factors=[2], fmt=FormatV05())


@pytest.mark.parametrize(
    "images, labels",
    [
        ("[('cube_0.zarr', 'raw'), ('cube_1.zarr', 'raw')]",
         "[('cube_0.zarr', 'lab'), ('cube_1.zarr', 'lab')]"),
        ("[('raw_0.ome.zarr', ''), ('raw_1.ome.zarr', '')]",
         "[('cube_0.zarr', 'lab'), ('cube_1.zarr', 'lab')]"),
    ],
    ids=["zarr v3", "OME-Zarr"],
)  # fmt: skip
def test_dry_run_reads_the_zarr_stores_that_training_reads(tmp_path, images, labels):
    (tmp_path / "data").mkdir()
    write_zarr_cubes(tmp_path / "data")
    config = tiny_config(tmp_path, f"d_files = {images}\nl_files = {labels}\n")
    dry = run_cli(config, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "(64, 64, 4) uint8" in dry.stdout and "Dry run: stopping" in dry.stdout, dry.stdout
    trained = run_cli(config, "--set", "n_steps=1", "--gpu=false")
    assert trained.returncode == 0, trained.stderr


def test_dry_run_counts_the_channels_of_multi_channel_images(tmp_path):
    (tmp_path / "data").mkdir()
    for i in range(2):
        raw, labels = build_membrane_volume((64, 64, 4), n_cells=12, seed=i)
        write_h5(tmp_path / "data" / f"raw_{i}.h5", raw=np.stack([raw, 255 - raw]))
        write_h5(tmp_path / "data" / f"lab_{i}.h5", lab=labels)
    result = run_cli(tiny_config(tmp_path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "2 channel(s)" in result.stdout and "(2, 64, 64, 4)" in result.stdout, result.stdout


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_dry_run_refuses_a_gpu_this_machine_lacks(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path), "--dry-run", "--gpu=0")
    assert result.returncode == 2, result.stdout
    assert "--gpu=0" in result.stderr and "no CUDA" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("example", [e for e in shipped_examples() if e != "config_template.py"])
def test_every_shipped_example_starts_without_a_warning(example):
    """A new user's first command must not greet them with a WARNING: every shipped example's
    dry run (the shared ISBI 2012 and MNIST data, where present) is clean. (The config
    template lists every option's default; it is no example to train.)"""
    result = run_cli(example, "--dry-run", "--gpu=false")
    if result.returncode == 2 and "does not exist" in result.stderr:
        pytest.skip(f"the data of {example} is not on this machine")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "WARNING" not in output and "Traceback" not in output, output
    assert "Dry run: stopping" in output
