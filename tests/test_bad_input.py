"""Bad input is refused before training: exit code 2, one paragraph naming the culprit.

Every case runs the real command line (``python -m elektronn.train cfg.py``) on the tiny
2D config of ``test_cli`` with one thing broken. Each must end with exit code 2, a message on
stderr that names the file, dataset or option at fault and what was expected, no traceback,
and an existing save directory left exactly as it was: a user who re-runs a config with a
typo must never lose the files of the previous run.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from makers import tiny_net, write_h5
from tiny import run_cli, tiny_config

from elektronn.net.paramfile import save_params

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """The save directory of an earlier run of the tiny config (overwrite=True is the default)."""
    save_dir = tmp_path / "runs" / "tiny"
    (save_dir / "Backup").mkdir(parents=True)
    (save_dir / "Backup" / "config.py").write_text("# the earlier run's config\n")
    (save_dir / "tiny-LAST.param").write_bytes(b"the earlier run's parameters")
    return save_dir


# --------------------------------------------------------------------- how each case breaks
# Each case: (prepare(tmp_path, data_folder) -> extra config text, fragments of the message).
Prepare = Callable[[Path, Path], str]


def missing_file(tmp: Path, data: Path) -> str:
    return "d_files = [('nope.h5', 'raw'), ('raw_1.h5', 'raw')]\n"


def unreadable_file(tmp: Path, data: Path) -> str:
    (data / "junk.h5").write_bytes(b"this is not an HDF5 file\n" * 10)
    return "d_files = [('junk.h5', 'raw'), ('raw_1.h5', 'raw')]\n"


def missing_key(tmp: Path, data: Path) -> str:
    return "l_files = [('lab_0.h5', 'labels'), ('lab_1.h5', 'lab')]\n"


def unregistrable_shapes(tmp: Path, data: Path) -> str:
    write_h5(data / "lab_odd.h5", lab=np.zeros((63, 64, 4), np.int16))
    return "l_files = [('lab_odd.h5', 'lab'), ('lab_1.h5', 'lab')]\n"


def labels_too_large(tmp: Path, data: Path) -> str:
    labels = np.zeros((64, 64, 4), np.int16)
    labels[30, 30, 1] = 5  # inside the part the registration keeps
    write_h5(data / "lab_big.h5", lab=labels)
    return "l_files = [('lab_big.h5', 'lab'), ('lab_1.h5', 'lab')]\n"


def fractional_labels(tmp: Path, data: Path) -> str:
    write_h5(data / "lab_frac.h5", lab=np.full((64, 64, 4), 0.5, np.float32))
    return "l_files = [('lab_frac.h5', 'lab'), ('lab_1.h5', 'lab')]\n"


def wrong_dimensionality(tmp: Path, data: Path) -> str:
    write_h5(data / "raw_2d.h5", raw=np.zeros((64, 64), np.float32))
    return "d_files = [('raw_2d.h5', 'raw'), ('raw_1.h5', 'raw')]\n"


def patch_too_large(tmp: Path, data: Path) -> str:
    for name, key, dtype in (
        ("raw_small.h5", "raw", np.float32),
        ("lab_small.h5", "lab", np.int16),
    ):
        write_h5(data / name, **{key: np.zeros((20, 20, 4), dtype)})
    return (
        "d_files = [('raw_small.h5', 'raw'), ('raw_1.h5', 'raw')]\n"
        "l_files = [('lab_small.h5', 'lab'), ('lab_1.h5', 'lab')]\n"
    )


def empty_data(tmp: Path, data: Path) -> str:
    write_h5(data / "raw_empty.h5", raw=np.zeros((0, 64, 4), np.float32))
    return "d_files = [('raw_empty.h5', 'raw'), ('raw_1.h5', 'raw')]\n"


def nan_in_image(tmp: Path, data: Path) -> str:
    raw = np.random.default_rng(0).random((64, 64, 4), dtype=np.float32)
    raw[10, 10, 2] = np.nan
    write_h5(data / "raw_nan.h5", raw=raw)
    return "d_files = [('raw_nan.h5', 'raw'), ('raw_1.h5', 'raw')]\n"


def unequal_file_lists(tmp: Path, data: Path) -> str:
    return "l_files = [('lab_0.h5', 'lab')]\n"


def valid_cubes_out_of_range(tmp: Path, data: Path) -> str:
    return "valid_cubes = [2]\n"


def cube_prios_wrong_length(tmp: Path, data: Path) -> str:
    return "cube_prios = [1.0, 2.0, 3.0]\n"


def class_weights_wrong_length(tmp: Path, data: Path) -> str:
    return "class_weights = [1.0, 2.0, 3.0]\n"


def dropout_rates_wrong_length(tmp: Path, data: Path) -> str:
    return "dropout_rates = [0.1, 0.1, 0.1, 0.1, 0.1]\n"


def data_class_without_getbatch(tmp: Path, data: Path) -> str:
    (tmp / "mydata.py").write_text(
        textwrap.dedent(
            """
            class NoBatches:
                def __init__(self, **kwargs):
                    self.n_lab = 2

                def get_batch(self, batch_size, source="train"):
                    raise AssertionError("never called")
            """
        )
    )
    return "data_class_name = ('mydata.py', 'NoBatches')\n"


def corrupt_param_file(tmp: Path, data: Path) -> str:
    (tmp / "broken.param").write_bytes(b"PK\x03\x04 truncated torch zip")
    return f"param_file = {str(tmp / 'broken.param')!r}\n"


def param_file_of_3d_net(tmp: Path, data: Path) -> str:
    net = tiny_net(((1, 6, 6), (1, 4, 4)), ((1, 2, 2), (1, 1, 1)), (4, 4), act="relu")
    save_params(tmp / "net3d.param", net, None)
    return f"param_file = {str(tmp / 'net3d.param')!r}\n"


def syntax_error(tmp: Path, data: Path) -> str:
    return "n_steps = 12\nbatch_size = = 2\n"


CASES: dict[str, tuple[Prepare, tuple[str, ...]]] = {
    "missing h5 file": (missing_file, ("nope.h5", "does not exist", "d_files")),
    "unreadable h5 file": (unreadable_file, ("junk.h5", "h5")),
    "missing dataset key": (missing_key, ("lab_0.h5", "'labels'", "'lab'")),
    "shapes not registrable": (unregistrable_shapes, ("lab_odd.h5", "63", "64", "centre")),
    "labels >= n_lab": (labels_too_large, ("lab_big.h5", "class 5", "n_lab is 2")),
    "fractional labels for nll": (fractional_labels, ("lab_frac.h5", "whole numbers", "'nll'")),
    "wrong dimensionality": (wrong_dimensionality, ("raw_2d.h5", "(64, 64)", "(x, y, z)")),
    "patch larger than data": (patch_too_large, ("raw_small.h5", "20, 20", "patch")),
    "empty data": (empty_data, ("raw_empty.h5", "empty")),
    "NaN in image": (nan_in_image, ("raw_nan.h5", "NaN")),
    "d_files/l_files lengths": (unequal_file_lists, ("'d_files'", "'l_files'", "2", "1")),
    "valid_cubes out of range": (valid_cubes_out_of_range, ("valid_cubes", "2")),
    "cube_prios length": (cube_prios_wrong_length, ("cube_prios", "3", "2")),
    "class_weights length": (class_weights_wrong_length, ("class_weights", "3", "n_lab is 2")),
    "dropout_rates length": (dropout_rates_wrong_length, ("dropout_rates", "5", "2 layers")),
    "data class without getbatch": (data_class_without_getbatch, ("NoBatches", "getbatch")),
    "corrupt param_file": (corrupt_param_file, ("broken.param", "corrupt")),
    "param_file of a 3D net": (param_file_of_3d_net, ("net3d.param", "3D", "2D")),
    "syntax error in config": (syntax_error, ("tiny.py", "line {bad_line}", "SyntaxError")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_and_touches_nothing(tmp_path, tiny_data, old_run, case):
    prepare, fragments = CASES[case]
    config = tiny_config(tmp_path, prepare(tmp_path, tiny_data))
    lines = config.read_text().splitlines()
    bad_line = next((n for n, line in enumerate(lines, 1) if "= =" in line), None)
    before = snapshot(old_run)
    result = run_cli(config, "--gpu=false")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr  # warnings may come before it
    message = errors[0]
    assert message.startswith("elektronn-train: error: ") and result.stderr.endswith(
        message + "\n"
    ), result.stderr
    for fragment in (f.format(bad_line=bad_line) for f in fragments):
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert snapshot(old_run) == before, "the earlier run's save directory was changed"
