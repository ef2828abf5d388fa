"""The blockwise engine on its own: blocks with a context, done marks, failures, Dask."""

import sys
from dataclasses import dataclass

import numpy as np
import pytest
import zarr
from scipy import ndimage

from elektronn.blockwise import Block, BlockwiseError, Task, run_task

SHAPE, BLOCK, CONTEXT = (23, 17, 9), (8, 8, 4), (2, 2, 1)


def volume(tmp_path):
    data = np.random.default_rng(0).random(SHAPE).astype(np.float32)
    zarr.open_array(
        str(tmp_path / "in.zarr"), mode="w", shape=SHAPE, chunks=BLOCK, dtype="float32"
    )[...] = data
    zarr.open_array(
        str(tmp_path / "out.zarr"),
        mode="w",
        shape=SHAPE,
        chunks=BLOCK,
        dtype="float32",
        fill_value=np.nan,
    )
    return data


@dataclass(frozen=True)
class BoxMean:
    """A 5 x 5 x 3 mean filter: each block reads more than it writes (its context)."""

    folder: str
    fail_at: tuple[int, ...] | None = None

    def __call__(self, block: Block) -> int:
        if block.index == self.fail_at:
            raise OSError(28, "No space left on device")
        data = zarr.open_array(f"{self.folder}/in.zarr", mode="r")[block.read]
        mean = ndimage.uniform_filter(data, size=(5, 5, 3), mode="nearest")
        zarr.open_array(f"{self.folder}/out.zarr", mode="r+")[block.write] = mean[block.inner]
        return block.voxels


def task(tmp_path, **changes):
    return Task(
        "box mean",
        SHAPE,
        BLOCK,
        BoxMean(str(tmp_path), **changes),
        context=CONTEXT,
        done=str(tmp_path / "done"),
        axes="xyz",
    )


def expected(tmp_path, data):
    """The filter of each block's read box, as one pass over the volume computes it inside."""
    out = np.asarray(zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[...])
    whole = ndimage.uniform_filter(data, size=(5, 5, 3), mode="nearest")
    inside = tuple(slice(c, n - c) for c, n in zip(CONTEXT, SHAPE))
    return out, whole, inside


def test_blocks_cover_the_region_once_and_read_their_context():
    t = Task("t", SHAPE, BLOCK, print, context=CONTEXT)
    assert t.grid == (3, 3, 3) and t.n_blocks == 27
    covered = np.zeros(SHAPE, int)
    for number, block in enumerate(t.blocks()):
        assert block.number == number
        covered[block.write] += 1
        for w, r, c, n in zip(block.write, block.read, CONTEXT, SHAPE):
            assert r.start == max(0, w.start - c) and r.stop == min(n, w.stop + c)
    assert (covered == 1).all()
    last = t.block_at((2, 2, 2))
    assert last.write == (slice(16, 23), slice(16, 17), slice(8, 9))
    assert last.inner == (slice(2, 9), slice(2, 3), slice(1, 2))


def test_in_process_run_is_resumable(tmp_path):
    data = volume(tmp_path)
    assert run_task(task(tmp_path), progress=False) == 27
    out, whole, inside = expected(tmp_path, data)
    np.testing.assert_allclose(out[inside], whole[inside], rtol=1e-6)
    assert not np.isnan(out).any()
    assert run_task(task(tmp_path), progress=False) == 0  # all marked done


def test_a_failing_block_is_named_and_only_it_is_rerun(tmp_path):
    volume(tmp_path)
    with pytest.raises(BlockwiseError) as failure:
        run_task(task(tmp_path, fail_at=(1, 0, 0)), progress=False, retries=1)
    message = str(failure.value)
    assert "1 block(s) of the box mean failed" in message
    assert "block (1, 0, 0) (x, y, z)" in message and "No space left on device" in message
    assert "rerun the same command" in message
    done = np.asarray(zarr.open_array(str(tmp_path / "done"), mode="r")[...])
    assert done.sum() == 9 and not done[1, 0, 0]  # stopped at the failure, as a full disk would
    assert run_task(task(tmp_path), progress=False) == 27 - 9


def test_a_done_record_of_another_grid_is_refused(tmp_path):
    volume(tmp_path)
    run_task(task(tmp_path), progress=False)
    other = Task("box mean", SHAPE, (4, 4, 4), BoxMean(str(tmp_path)), done=str(tmp_path / "done"))
    with pytest.raises(BlockwiseError, match="records"):
        run_task(other, progress=False)


def test_bad_task_shapes():
    with pytest.raises(BlockwiseError, match="block shape"):
        Task("t", SHAPE, (8, 8), print)
    with pytest.raises(BlockwiseError, match="context"):
        Task("t", SHAPE, BLOCK, print, context=(-1, 0, 0))


@pytest.mark.slow
def test_on_a_local_cluster_equals_in_process(tmp_path):
    """``workers``: a real LocalCluster started and closed by the engine; a block that keeps
    failing is retried, then named, while the others finish."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack tests/
    data = volume(tmp_path)
    assert run_task(task(tmp_path), workers=2, progress=False) == 27
    out, whole, inside = expected(tmp_path, data)
    np.testing.assert_allclose(out[inside], whole[inside], rtol=1e-6)
    failing = tmp_path / "failing"
    failing.mkdir()
    volume(failing)
    with pytest.raises(BlockwiseError, match=r"block \(0, 1, 0\) \(x, y, z\)"):
        run_task(task(failing, fail_at=(0, 1, 0)), workers=2, progress=False)
    assert np.asarray(zarr.open_array(str(failing / "done"), mode="r")[...]).sum() == 26
