"""Blockwise prediction into OME-Zarr: equal to single-process, resumable, on real Dask clusters."""

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time

import dask
import h5py
import numpy as np
import pytest
import zarr
from test_predict_cli import save_run, tiny_net

from elektronn.axes import AxesView
from elektronn.blockwise import cluster
from elektronn.predict import predict_dense
from elektronn.predict.cli import main
from elektronn.predict.stores import DONE

distributed = pytest.importorskip("dask.distributed")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dask_cluster():
    """A real LocalCluster of 2 single-threaded worker processes, shared by this module."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit=0
    ) as c:
        yield c


def write_volume(folder, shape, seed=0):
    """An (x, y, z) uint8 volume in an h5 file, as training data is stored."""
    raw = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    with h5py.File(folder / "raw.h5", "w") as f:
        f["raw"] = raw
    return f"{folder / 'raw.h5'}:raw", raw


def level0(path, valid=True):
    """The OME-Zarr output's level 0 in user order (c, x, y, z): the region the net predicted
    (as its ``elektronn`` attributes say), or all of it."""
    root = zarr.open_group(str(path), mode="r")
    array = root["0"]
    view = AxesView(array, "".join(array.metadata.dimension_names))
    region = root.attrs["elektronn"]
    box = tuple(slice(o, o + n) for o, n in zip(region["valid_offset"], region["valid_shape"]))
    return view[(slice(None), *(box if valid else (slice(None),) * len(box)))]


def done_count(path):
    try:
        return int(np.asarray(zarr.open_group(str(path), mode="r")[DONE][...]).sum())
    except (KeyError, FileNotFoundError, ValueError):
        return 0


NETS = {
    "2D": dict(n_dim=2, shape=(45, 38, 5), block="16,12,2", tile=(24, 24, 1)),
    "3D": dict(n_dim=3, shape=(30, 27, 14), block="8,8,4", tile=(20, 20, 8)),
}


@pytest.mark.parametrize("pad", [False, True], ids=["valid", "pad"])
@pytest.mark.parametrize("net", list(NETS))
def test_blocks_equal_single_process(tmp_path, net, pad):
    case = NETS[net]
    model = tiny_net(case["n_dim"])
    spec, raw = write_volume(tmp_path, case["shape"])
    out = tmp_path / "prob.zarr"
    flags = ["--pad"] if pad else []
    assert (
        main(
            [
                str(save_run(tmp_path, model)),
                spec,
                str(out),
                "--gpu=false",
                "--block",
                case["block"],
                *flags,
            ]
        )
        == 0
    )
    expected = predict_dense(model, raw[None], axes="cxyz", pad_raw=pad)
    assert zarr.open_group(str(out))[DONE].shape != (1, 1, 1)
    np.testing.assert_allclose(level0(out), expected, atol=1e-6, rtol=0)


@pytest.mark.slow
def test_dask_workers_equal_single_process(tmp_path, dask_cluster, capsys):
    model = tiny_net(3)
    spec, raw = write_volume(tmp_path, NETS["3D"]["shape"])
    out = tmp_path / "prob.zarr"
    save_dir = save_run(tmp_path, model)
    args = [str(save_dir), spec, str(out), "--gpu=false", "--block", "8,8,4", "--pad"]
    assert main([*args, "--scheduler", dask_cluster.scheduler_address]) == 0
    expected = predict_dense(model, raw[None], axes="cxyz", pad_raw=True)
    np.testing.assert_allclose(level0(out), expected, atol=1e-6, rtol=0)
    err = capsys.readouterr().err
    assert "\r" not in err and "blocks 64/64" in err and "failed 0" in err
    assert main([*args, "--scheduler", dask_cluster.scheduler_address]) == 0
    assert "is complete (64 blocks done); nothing to do" in capsys.readouterr().out


@pytest.mark.slow
def test_local_cluster_with_workers(tmp_path):
    """--workers N starts (and closes) a LocalCluster of its own, not dask's default."""
    model = tiny_net(2)
    spec, raw = write_volume(tmp_path, (40, 40, 2))
    out = tmp_path / "prob.zarr"
    args = [str(save_run(tmp_path, model)), spec, str(out), "--gpu=false", "--block", "16,16,1"]
    with dask.config.set(scheduler="threads"):
        assert main([*args, "--workers", "1"]) == 0
        assert dask.config.get("scheduler") == "threads", "the caller's dask scheduler changed"
    np.testing.assert_allclose(
        level0(out), predict_dense(model, raw[None], axes="cxyz"), atol=1e-6, rtol=0
    )


def a_busy_worker(client, out, run, deadline):
    """The address of a worker with a block in hand once 5 blocks are done, None if none was.

    Polled, not read once: between a block's end and the next one's start both workers can
    be idle for a moment.
    """
    while run.is_alive() and time.monotonic() < deadline:
        if done_count(out) >= 5:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                return busy[0]
        time.sleep(0.02)
    return None


def scheduled_args(tmp_path, model, spec, out, cluster):
    """The command line of a prediction in blocks of 8 x 8 x 1 on ``cluster``."""
    save_dir = str(save_run(tmp_path, model))
    return [save_dir, spec, str(out), "--gpu=false", "--block", "8,8,1",
            "--scheduler", cluster.scheduler_address]  # fmt: skip


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_its_block_rerun(tmp_path, dask_cluster):
    model = tiny_net(2)
    spec, raw = write_volume(tmp_path, (56, 56, 12))
    out = tmp_path / "prob.zarr"
    args = scheduled_args(tmp_path, model, spec, out, dask_cluster)
    result = {}
    run = threading.Thread(target=lambda: result.setdefault("rc", main(args)))
    run.start()
    # Not the default client: closed before the run's own, it would leave dask's global
    # scheduler set to a client that no longer exists, for every later test.
    with distributed.Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        worker = a_busy_worker(client, out, run, deadline=time.monotonic() + 60)
        assert worker is not None, "no worker had a block in hand before the run ended"
        pid = client.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        run.join(timeout=120)
        assert result["rc"] == 0
        assert pid not in client.run(os.getpid).values()
    assert done_count(out) == 7 * 7 * 12
    np.testing.assert_allclose(
        level0(out), predict_dense(model, raw[None], axes="cxyz"), atol=1e-6, rtol=0
    )


@pytest.mark.slow
def test_a_killed_client_is_resumed_by_the_same_command(tmp_path, dask_cluster):
    model = tiny_net(2)
    spec, raw = write_volume(tmp_path, (56, 56, 12))
    out = tmp_path / "prob.zarr"
    args = scheduled_args(tmp_path, model, spec, out, dask_cluster)
    command = [sys.executable, "-m", "elektronn.predict.cli", *args]
    client = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    deadline = time.monotonic() + 60
    while done_count(out) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    client.send_signal(signal.SIGKILL)
    client.wait()
    total, before = 7 * 7 * 12, done_count(out)  # 588 blocks: far from done when killed
    assert 0 < before < total
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    computed = int(rerun.stdout.split(" of ")[0].rsplit(" ", 1)[1])
    assert computed <= total - before
    np.testing.assert_allclose(
        level0(out), predict_dense(model, raw[None], axes="cxyz"), atol=1e-6, rtol=0
    )


def test_full_disk_leaves_the_block_undone_and_the_rerun_finishes(tmp_path, monkeypatch, capsys):
    model = tiny_net(2)
    spec, raw = write_volume(tmp_path, (40, 40, 3))
    out = tmp_path / "prob.zarr"
    args = [str(save_run(tmp_path, model)), spec, str(out), "--gpu=false", "--block", "16,16,1"]
    write = AxesView.__setitem__
    calls = []

    def fills_the_disk(self, index, value):
        if not isinstance(self.array, zarr.Array):  # a tile into a block in memory
            return write(self, index, value)
        calls.append(index)
        if len(calls) >= 4:  # full from the 4th block on: its retries fail alike
            write(self, index, value[:, :1])  # part of the block reaches the disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(self, index, value)

    monkeypatch.setattr(AxesView, "__setitem__", fills_the_disk)
    assert main(args) == 2
    err = capsys.readouterr().err
    message = err.splitlines()[-1]
    assert message.startswith("elektronn-predict: error: 1 block(s) of the prediction failed")
    assert "block (0, 1, 0) (x, y, z)" in message and len(calls) == 3 + 3  # 2 retries
    assert "No space left on device" in message and "rerun the same command" in message
    assert done_count(out) == 3
    monkeypatch.setattr(AxesView, "__setitem__", write)
    assert main(args) == 0
    assert "24 of 27 blocks computed" in capsys.readouterr().out
    np.testing.assert_allclose(
        level0(out), predict_dense(model, raw[None], axes="cxyz"), atol=1e-6, rtol=0
    )


@pytest.fixture
def small_run(tmp_path):
    model = tiny_net(2)
    spec, _ = write_volume(tmp_path, (40, 40, 3))
    return [str(save_run(tmp_path, model)), spec], tmp_path


def error_of(args, capsys):
    assert main([*args, "--gpu=false"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("elektronn-predict: error: ") and err.count("\n") == 1, err
    return err


def test_bad_cluster_options(small_run, capsys, monkeypatch):
    args, folder = small_run
    out = str(folder / "p.zarr")
    assert "--workers 0" in error_of([*args, out, "--workers", "0"], capsys)
    assert "does not end in .zarr" in error_of(
        [*args, str(folder / "p.h5"), "--workers", "1"], capsys
    )
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1)
    err = error_of([*args, out, "--scheduler", "tcp://127.0.0.1:9"], capsys)
    assert "--scheduler 'tcp://127.0.0.1:9': no Dask scheduler answered" in err


def test_input_smaller_than_the_field_of_view(tmp_path, capsys):
    spec, _ = write_volume(tmp_path, (6, 40, 2))
    args = [str(save_run(tmp_path, tiny_net(2))), spec, str(tmp_path / "p.zarr")]
    assert "smaller than the net's field of view" in error_of(args, capsys)
    assert not (tmp_path / "p.zarr").exists()


def test_existing_output_of_another_shape_or_dtype(small_run, capsys):
    args, folder = small_run
    out = str(folder / "p.zarr")
    assert main([*args, out, "--gpu=false", "--block", "16,16,1"]) == 0
    capsys.readouterr()
    err = error_of([*args, out, "--block", "16,16,1", "--dtype", "uint8"], capsys)
    assert "dtype 'float32' (now 'uint8')" in err and "--overwrite" in err
    assert "shape" in error_of([*args, out, "--block", "16,16,1", "--pad"], capsys)
    assert main([*args, out, "--gpu=false", "--block", "16,16,1", "--pad", "--overwrite"]) == 0


@pytest.mark.slow
def test_without_cluster_options_dask_is_not_imported(small_run):
    args, folder = small_run
    code = (
        "import sys; from elektronn.predict.cli import main; "
        f"assert main({[*args, str(folder / 'p.h5'), '--gpu=false']!r}) == 0; "
        "assert 'dask' not in sys.modules and 'zarr' not in sys.modules, 'imported'; "
        f"assert main({[*args, str(folder / 'p.zarr'), '--gpu=false']!r}) == 0; "
        "assert 'distributed' not in sys.modules, 'distributed imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_default_tile_is_timed_once_and_cached(small_run, capsys):
    args, folder = small_run
    assert main([*args, str(folder / "a.h5"), "--gpu=false"]) == 0
    cache = folder / "tiny" / "tile-cache.json"
    entries = json.loads(cache.read_text())
    ((key, tile),) = entries.items()
    assert key.startswith("tiny_end.param@") and len(tile) == 2 and (tile[0] - 8) % 2 == 0
    cache.write_text(json.dumps({key: [12, 12]}))
    assert main([*args, str(folder / "b.h5"), "--gpu=false"]) == 0
    assert json.loads(cache.read_text()) == {key: [12, 12]}  # read, not timed again
    with h5py.File(folder / "a.h5") as a, h5py.File(folder / "b.h5") as b:
        np.testing.assert_allclose(a["prob"][()], b["prob"][()], atol=1e-6, rtol=0)
