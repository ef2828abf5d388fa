"""``elektronn-predict`` as a user runs it: save directory in, h5 out, clear errors, profile."""

import os
import subprocess
import sys

import h5py
import makers
import numpy as np
import pytest

from elektronn.net.paramfile import save_params
from elektronn.predict import predict_dense
from elektronn.predict.cli import main


def run_cli(*args, cwd=None):
    """The CLI in a fresh interpreter; one thread, as tiny nets on a shared machine want."""
    return subprocess.run(
        [sys.executable, "-m", "elektronn.predict.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_net(n_dim=2, mlp=()):
    filters = ((4, 4), (3, 3)) if n_dim == 2 else ((1, 4, 4), (2, 3, 3))
    pool = ((2, 2), (1, 1)) if n_dim == 2 else ((1, 2, 2), (1, 1, 1))
    input_shape = (21,) * n_dim if mlp else None
    return makers.tiny_net(
        filters, pool, (3, 3), act="relu", mlp=mlp, input_shape=input_shape
    ).eval()


def save_run(folder, model, name="tiny", suffix="_end"):
    """A save directory ``folder/name`` holding ``<name><suffix>.param``."""
    save_dir = folder / name
    save_dir.mkdir(parents=True, exist_ok=True)
    save_params(save_dir / f"{name}{suffix}.param", model, {"save_name": name, "target": "nll"})
    return save_dir


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    """An (x, y, z) uint8 volume in an h5 file, as training data is stored."""
    path = tmp_path_factory.mktemp("vol") / "raw.h5"
    raw = np.random.default_rng(0).integers(0, 256, (37, 41, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f["raw"] = raw
        f["other"] = raw[..., 0]
    return path, raw


@pytest.mark.slow
def test_end_to_end_matches_the_api(tmp_path, volume):
    path, raw = volume
    model = tiny_net()
    save_dir = save_run(tmp_path, model)
    out = tmp_path / "prob.h5"
    result = run_cli(save_dir, f"{path}:raw", out, "--gpu=false", "--tile", "20,24")
    assert result.returncode == 0, result.stderr
    assert "Mvox/s" in result.stderr and "Wrote" in result.stdout
    expected = predict_dense(model, raw[None], axes="cxyz", tile_shape=(20, 24, 1))
    with h5py.File(out, "r") as f:
        prob = f["prob"]
        np.testing.assert_allclose(prob[()], expected, atol=1e-6)
        assert list(prob.attrs["offset"]) == [4, 4, 0]
        assert prob.attrs["axis_order"] == "cxyz"


def test_bf16_prediction_is_close_to_fp32_but_computed_in_bf16(tmp_path, volume):
    path, raw = volume
    model = tiny_net()
    save_dir = save_run(tmp_path, model)
    out = f"{tmp_path / 'prob.h5'}:bf16"
    assert main([str(save_dir), f"{path}:raw", out, "--gpu=false", "--precision=bf16"]) == 0
    with h5py.File(tmp_path / "prob.h5", "r") as f:
        bf16 = f["bf16"][()]
    fp32 = predict_dense(model, raw[None], axes="cxyz")
    difference = np.abs(bf16 - fp32).max()
    assert 1e-6 < difference < 2e-2


@pytest.mark.slow
def test_pad_uint8_output_and_last_params(tmp_path, volume, capsys):
    path, raw = volume
    save_dir = save_run(tmp_path, tiny_net(n_dim=3), suffix="-LAST")
    out = f"{tmp_path / 'prob.h5'}:maps/membrane"
    result = run_cli(save_dir, f"{path}:raw", out, "--gpu=false", "--pad", "--dtype=uint8")
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "prob.h5", "r") as f:
        prob = f["maps/membrane"]
        assert prob.shape == (2, *raw.shape) and prob.dtype == np.uint8
        assert list(prob.attrs["offset"]) == [0, 0, 0]
        assert np.all(np.abs(prob[0].astype(int) + prob[1] - 255) <= 1)
    assert main([str(save_dir), f"{path}:raw", out, "--gpu=false", "--pad"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_output_into_the_input_file(tmp_path, volume, capsys):
    path, raw = volume
    shared = tmp_path / "shared.h5"
    shared.write_bytes(path.read_bytes())
    save_dir = save_run(tmp_path, tiny_net())
    assert main([str(save_dir), f"{shared}:raw", f"{shared}:prob", "--gpu=false"]) == 0
    args = [str(save_dir), f"{shared}:raw", f"{shared}:raw", "--gpu=false", "--overwrite"]
    assert main(args) == 2
    assert "input dataset itself" in capsys.readouterr().err
    with h5py.File(shared, "r") as f:
        np.testing.assert_array_equal(f["raw"][()], raw)
        assert f["prob"].shape == (2, 37 - 8, 41 - 8, 3)


@pytest.mark.slow
def test_error_exit_in_a_subprocess(tmp_path, volume):
    path, _ = volume
    result = run_cli(save_run(tmp_path, tiny_net()), f"{path}:nokey", tmp_path / "o.h5")
    assert result.returncode == 2
    assert "no dataset 'nokey'" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_errors_are_one_paragraph_with_exit_code_2(tmp_path, volume, capsys):
    path, _ = volume
    save_2d = save_run(tmp_path, tiny_net())
    out = tmp_path / "out.h5"
    cases = [
        ((tmp_path / "nowhere", f"{path}:raw", out), "neither a save directory"),
        ((tmp_path, f"{path}:raw", out), "holds no"),
        ((save_2d, tmp_path / "missing.h5", out), "does not exist"),
        ((save_2d, path, out), "several datasets"),
        ((save_2d, f"{path}:raw"), "Give INPUT.h5:KEY and OUTPUT.h5"),
        ((save_2d, f"{path}:raw", out, "--tile", "20"), "--tile '20'"),
        ((save_2d, f"{path}:raw", out, "--gpu=7"), "CUDA device 7"),
    ]
    save_3d = save_run(tmp_path, tiny_net(n_dim=3), name="net3d")
    cases.append(((save_3d, f"{path}:other", out), "3D net"))
    save_mlp = save_run(tmp_path, tiny_net(mlp=(4,)), name="mlp")
    cases.append(((save_mlp, f"{path}:raw", out), "MLP"))
    (tmp_path / "broken.param").write_bytes(b"not a torch file")
    cases.append(((tmp_path / "broken.param", f"{path}:raw", out), "cannot be read"))
    for args, message in cases:
        assert main(["--gpu=false", *map(str, args)]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("elektronn-predict: error: ") and message in err, (args, err)
        assert err.count("\n") == 1


def test_profile_writes_speed_csv(tmp_path, volume, monkeypatch, capsys):
    path, _ = volume
    save_dir = save_run(tmp_path, tiny_net())
    monkeypatch.chdir(tmp_path)
    assert main([str(save_dir), f"{path}:raw", "--profile", "--gpu=false"]) == 0
    assert "Fastest: --tile" in capsys.readouterr().out
    lines = (tmp_path / "Speed_tiny.csv").read_text().splitlines()
    assert lines[0].startswith("tile_in_xyz") and len(lines) >= 3


def test_a_zyx_input_is_named_in_user_words_and_read_with_axes(tmp_path, capsys):
    """CREMI-style (z, y, x) h5 data: refused with the (x, y, z) shape read and --axes."""
    xyz = np.random.default_rng(2).integers(0, 256, (30, 28, 6), dtype=np.uint8)
    with h5py.File(tmp_path / "zyx.h5", "w") as f:
        f["raw"] = xyz.transpose(2, 1, 0)
    save_dir = save_run(tmp_path, tiny_net(3))
    args = [str(save_dir), f"{tmp_path / 'zyx.h5'}:raw"]
    assert main([*args, str(tmp_path / "a.h5"), "--gpu=false"]) == 2
    err = capsys.readouterr().err
    assert "read as (x, y, z) = (6, 28, 30)" in err and "--axes zyx" in err
    assert "internal order" not in err and "pad_raw" not in err
    assert main([*args, str(tmp_path / "b.h5"), "--axes", "zyx", "--gpu=false"]) == 0
    with h5py.File(tmp_path / "b.h5") as f:
        np.testing.assert_allclose(
            f["prob"][()], predict_dense(tiny_net(3), xyz[None], axes="cxyz"), atol=1e-6
        )
    assert main([*args, str(tmp_path / "c.h5"), "--axes", "zyxc", "--gpu=false"]) == 2
    assert "--axes 'zyxc' must name each of the input's 3 axes" in capsys.readouterr().err


def test_float_input_above_one_is_warned_about(tmp_path, capsys):
    raw = np.random.default_rng(3).integers(0, 256, (24, 24, 2)).astype(np.float32)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["raw"] = raw
    save_dir = save_run(tmp_path, tiny_net())
    assert (
        main([str(save_dir), f"{tmp_path / 'f.h5'}:raw", str(tmp_path / "p.h5"), "--gpu=false"])
        == 0
    )
    err = capsys.readouterr().err
    assert "stored as floats with values up to 25" in err and "divide the input" in err


def test_predict_volume_is_a_python_entry_point(tmp_path, volume):
    """The library call the command wraps: values in, the net read once, a summary out."""
    from elektronn.predict import TrainedNet, predict_volume

    path, raw = volume
    trained = TrainedNet.load(save_run(tmp_path, tiny_net()))
    line = predict_volume(
        trained,
        f"{path}:raw",
        str(tmp_path / "p.zarr"),
        tile=(20, 20),
        block=(16, 16, 1),
        progress=False,
    )
    assert "blocks computed" in line and "on the input's grid" in line
    line = predict_volume(trained, f"{path}:raw", str(tmp_path / "p.h5"), pad=True, progress=False)
    assert "Output voxel [c,i,j,k] belongs to input voxel [i+0,j+0,k+0]" in line
    with h5py.File(tmp_path / "p.h5") as f:
        np.testing.assert_allclose(
            f["prob"][()],
            predict_dense(trained.net, raw[None], axes="cxyz", pad_raw=True),
            atol=1e-6,
        )
