"""Tiny trainings through the CLI in every mode: img-scalar, vect-scalar, MNIST, lazy labels."""

import textwrap

import h5py
import numpy as np
import pytest
from tiny import run_cli, tiny_config

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers

COMMON = """
n_steps = 30
max_runtime = 120
history_freq = [10]
plot_on = False
SGD_params = dict(LR=0.05, momentum=0.9)
random_seed = 3
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text) + textwrap.dedent(COMMON))
    return path


def final_errors(save_dir, name):
    return np.load(save_dir / "Backup" / f"{name}.errors.npy")


def test_img_scalar_whole_image_classification(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    raw = rng.normal(0.3, 0.05, (20, 20, 40)) + 0.4 * labels  # bright slices are class 1
    with h5py.File(tmp_path / "raw.h5", "w") as f:
        f["raw"] = np.clip(raw, 0, 1).astype(np.float32)
    with h5py.File(tmp_path / "lab.h5", "w") as f:
        f["lab"] = labels.astype(np.int16)
    config = write(
        tmp_path,
        "scalar.py",
        f"""
    save_path = {str(tmp_path / "runs")!r}
    save_name = "scalar"
    mode = "img-scalar"
    n_dim = 2
    desired_input = 20
    filters = [3]
    pool = [2]
    nof_filters = [4]
    MLP_layers = [8]
    batch_size = 4
    monitor_batch_size = 8
    n_lab = 2
    data_path = label_path = {str(tmp_path)!r}
    d_files = [("raw.h5", "raw")] * 2
    l_files = [("lab.h5", "lab")] * 2
    valid_cubes = [1]
    border_mode = "crop"
    """,
    )
    result = run_cli(config)
    assert result.returncode == 0, result.stderr + result.stdout
    errors = final_errors(tmp_path / "runs" / "scalar", "scalar")
    assert errors[-1, 3] < 20.0, f"valid error {errors[-1, 3]} % should drop well below chance"


USER_DATA = '''
import numpy as np

class Blobs:
    """Two Gaussian blobs in 5 dimensions."""
    n_lab = 2
    example_shape = (5,)
    n_ch = 1

    def __init__(self, shift=2.0):
        self.shift = shift
        self.rng = np.random.default_rng(0)

    def reseed(self, seed):
        self.rng = np.random.default_rng(seed)

    def has_source(self, source):
        return source in ("train", "valid")

    def getbatch(self, batch_size, source="train"):
        labels = self.rng.integers(0, 2, batch_size).astype(np.int16)
        data = self.rng.normal(0, 1, (batch_size, 5)).astype(np.float32)
        data[:, 0] += self.shift * (labels - 0.5)
        return data, labels
'''


@pytest.mark.parametrize("workers", [0, 2])
def test_vect_scalar_user_data_class(tmp_path, workers):
    (tmp_path / "blobs.py").write_text(USER_DATA)
    config = write(
        tmp_path,
        "vect.py",
        f"""
    save_path = {str(tmp_path / "runs")!r}
    save_name = "vect"
    mode = "vect-scalar"
    data_class_name = ("blobs.py", "Blobs")
    data_load_kwargs = dict(shift=4.0)
    MLP_layers = [16]
    batch_size = 16
    monitor_batch_size = 64
    n_lab = 2
    background_processes = {workers}
    """,
    )
    result = run_cli(config)
    assert result.returncode == 0, result.stderr + result.stdout
    errors = final_errors(tmp_path / "runs" / "vect", "vect")
    assert errors[-1, 3] < 15.0


def test_user_data_class_without_getbatch_is_a_clear_error(tmp_path):
    (tmp_path / "bad.py").write_text("class Nothing:\n    n_lab = 2\n")
    config = write(
        tmp_path,
        "bad_cfg.py",
        f"""
    save_path = {str(tmp_path / "runs")!r}
    save_name = "bad"
    mode = "vect-scalar"
    data_class_name = ("bad.py", "Nothing")
    MLP_layers = [4]
    n_lab = 2
    """,
    )
    result = run_cli(config)
    assert result.returncode == 2
    assert "getbatch" in result.stderr and "Traceback" not in result.stderr


def test_mnist_mlp_example_runs(tmp_path, shared_data):
    result = run_cli(
        "mnist_mlp", "--set", f"save_path={tmp_path}", "--set", "n_steps=201",
        "--set", "history_freq=100", "--set", "monitor_batch_size=500",
        "--set", "background_processes=0", "--set", "plot_on=False",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert "#training examples: 200000" in result.stdout
    errors = final_errors(tmp_path / "MNIST_MLP", "MNIST_MLP")
    assert errors[-1, 3] < 40.0


def test_lazy_labels_training_runs(tmp_path, tiny_data):
    for i in range(2):
        with h5py.File(tiny_data / f"lab_{i}.h5", "a") as f:
            f["info"] = np.array([[1, 0], [0, 0]], np.int16)  # class 0 labelled, 1 lazily
    config = tiny_config(tmp_path, "lazy_labels = True\n")
    result = run_cli(config)
    assert result.returncode == 0, result.stderr + result.stdout
    assert (tmp_path / "runs" / "tiny" / "tiny_end.param").is_file()
