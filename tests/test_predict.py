"""Dense prediction: exact tiling equals one pass, padding, on-disk volumes, output dtypes."""

import io
import itertools

import h5py
import numpy as np
import pytest
import torch
from makers import tiny_net

from elektronn.arch import compute_architecture
from elektronn.axes import mirror_indices
from elektronn.predict import PredictionError, dense_output_shape, predict_dense
from elektronn.predict.geometry import AxisGeometry, net_geometry
from elektronn.predict.progress import ProgressBar
from elektronn.predict.tiling import plan_tiles, tile_axis

TOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")


def make_net(filters, pool, nof=(3, 4, 3), n_dim=2, n_ch=1, n_lab=2, mlp=(), seed=0):
    """A tiny ElektronnNet; filters/pool per layer in internal order."""
    input_shape = (24,) * n_dim if mlp else None
    sizes = dict(n_ch=n_ch, n_lab=n_lab, mlp=mlp, input_shape=input_shape, seed=seed)
    return tiny_net(filters, pool, nof, **sizes).eval()


def reference(model, raw):
    """Softmax of the whole volume ``(ch, *spatial)`` from plain strided passes, one per shift.

    Independent of tiling and of MFP: the output of the pass on ``raw`` shifted by ``a``
    fills ``dense[a::S]``; torch crops what does not fill a pooling window.
    """
    geometry = net_geometry(model)
    x = torch.from_numpy(raw.astype(np.float32))[None]
    size = x.shape[2:]
    dense = np.zeros((geometry.n_lab, *(n - f + 1 for n, f in zip(size, geometry.fov))), np.float32)
    for shift in itertools.product(*(range(s) for s in geometry.step)):
        crop = []
        for a, n, f, s in zip(shift, size, geometry.fov, geometry.step):
            k = (n - a - f) // s + 1
            crop.append(slice(a, a + f + (k - 1) * s))
        with torch.no_grad():
            out = torch.softmax(model.strided_forward(x[(..., *crop)]), 1)[0].numpy()
        dense[(slice(None), *(slice(a, None, s) for a, s in zip(shift, geometry.step)))] = out
    return dense


NET_2D = dict(filters=[(4, 4), (3, 3), (2, 2)], pool=[(2, 2), (3, 3), (1, 1)])
NET_3D = dict(
    filters=[(1, 3, 3), (3, 2, 2), (2, 2, 2)], pool=[(1, 2, 2), (2, 1, 3), (1, 1, 1)], n_dim=3
)


@pytest.fixture(scope="module")
def net2d():
    return make_net(**NET_2D)


@pytest.fixture(scope="module")
def net3d():
    return make_net(**NET_3D)


@pytest.fixture(scope="module")
def raw2d():
    return np.random.default_rng(0).random((1, 61, 74), dtype=np.float32)


@pytest.fixture(scope="module")
def raw3d():
    return np.random.default_rng(1).random((1, 11, 29, 34), dtype=np.float32)


@pytest.mark.parametrize("method", ["mfp", "stitch", "auto"])
@pytest.mark.parametrize("tile", [(25, 31), (36, 36), (1000, 1000)])
def test_tiled_2d_equals_single_pass(net2d, raw2d, method, tile):
    expected = reference(net2d, raw2d)
    got = predict_dense(net2d, raw2d, tile_shape=tile, method=method)
    assert got.shape == expected.shape == (2, 61 - 18, 74 - 18)
    assert np.abs(got - expected).max() <= TOL


@pytest.mark.parametrize("method", ["mfp", "stitch"])
@pytest.mark.parametrize("tile", [(5, 14, 20), (8, 40, 40)])
def test_tiled_3d_anisotropic_equals_single_pass(net3d, raw3d, method, tile):
    expected = reference(net3d, raw3d)
    got = predict_dense(net3d, raw3d, tile_shape=tile, method=method)
    assert net_geometry(net3d).step == (2, 2, 6)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOL


def test_net_without_pooling_and_default_tile():
    model = make_net(filters=[(3, 3), (3, 3)], pool=[(1, 1), (1, 1)], nof=(3, 3))
    raw = np.random.default_rng(2).random((1, 20, 23), dtype=np.float32)
    got = predict_dense(model, raw)
    assert np.abs(got - reference(model, raw)).max() <= TOL


def test_2d_net_on_stack_predicts_each_slice(net2d):
    rng = np.random.default_rng(3)
    stack_xyz = rng.integers(0, 256, (1, 40, 45, 3), dtype=np.uint8)
    got = predict_dense(net2d, stack_xyz, axes="cxyz", tile_shape=(25, 30, 2))
    assert got.shape == (2, 40 - 18, 45 - 18, 3)
    for z in range(3):
        expected = reference(net2d, stack_xyz[..., z] / np.float32(255))
        assert np.abs(got[..., z] - expected).max() <= TOL


def test_raw_order_xyz_matches_zxy(net3d, raw3d):
    zxy = predict_dense(net3d, raw3d, tile_shape=(6, 20, 20))
    xyz = predict_dense(net3d, raw3d.transpose(0, 2, 3, 1), axes="cxyz", tile_shape=(20, 20, 6))
    np.testing.assert_array_equal(xyz, zxy.transpose(0, 2, 3, 1))


def test_uint8_raw_is_scaled_like_training(net2d):
    raw = np.random.default_rng(4).integers(0, 256, (1, 30, 33), dtype=np.uint8)
    got = predict_dense(net2d, raw, tile_shape=(25, 25))
    assert np.abs(got - reference(net2d, raw / np.float32(255))).max() <= TOL


def test_pad_raw_output_covers_input(net2d, raw2d):
    padded = predict_dense(net2d, raw2d, tile_shape=(30, 40), pad_raw=True)
    assert padded.shape == (2, *raw2d.shape[1:])
    o = net_geometry(net2d).int_offset
    inner = predict_dense(net2d, raw2d, tile_shape=(30, 40))
    assert np.abs(padded[:, o[0] : -o[0], o[1] : -o[1]] - inner).max() <= TOL
    mirrored = np.pad(raw2d, [(0, 0), (o[0], o[0]), (o[1], o[1])], mode="symmetric")
    assert np.abs(padded - reference(net2d, mirrored)).max() <= TOL


def test_pad_raw_on_a_volume_smaller_than_the_fov(net3d):
    raw = np.random.default_rng(5).random((1, 2, 5, 7), dtype=np.float32)
    got = predict_dense(net3d, raw, pad_raw=True)
    assert got.shape == (2, 2, 5, 7)
    assert np.all(np.isfinite(got))


class CountingDataset:
    """Wraps an h5 dataset and records the largest box read (in voxels)."""

    def __init__(self, dataset):
        self.dataset, self.largest = dataset, 0
        self.shape, self.dtype = dataset.shape, dataset.dtype

    def __getitem__(self, index):
        block = self.dataset[index]
        self.largest = max(self.largest, block.size)
        return block


def test_h5_in_h5_out_equals_in_memory(net3d, raw3d, tmp_path):
    raw = (raw3d * 255).astype(np.uint8)
    expected = predict_dense(net3d, raw, tile_shape=(6, 18, 20))
    with h5py.File(tmp_path / "io.h5", "w") as f:
        f["raw"] = raw
        spy = CountingDataset(f["raw"])
        shape = dense_output_shape(net3d, raw.shape)
        out = f.create_dataset("prob", shape=shape, dtype="float32")
        result = predict_dense(net3d, spy, tile_shape=(6, 18, 20), out=out)
        assert result is out
        np.testing.assert_array_equal(out[()], expected)
    assert 0 < spy.largest < raw.size


def test_zarr_in_zarr_out_equals_in_memory(net2d, raw2d, tmp_path):
    zarr = pytest.importorskip("zarr")
    expected = predict_dense(net2d, raw2d, tile_shape=(30, 30))
    raw = zarr.open(str(tmp_path / "raw.zarr"), mode="w", shape=raw2d.shape, dtype="f4")
    raw[...] = raw2d
    out = zarr.open(str(tmp_path / "out.zarr"), mode="w", shape=expected.shape, dtype="f4")
    predict_dense(net2d, raw, tile_shape=(30, 30), out=out)
    np.testing.assert_array_equal(out[...], expected)


def test_uint8_and_float16_output(net2d, raw2d):
    prob = predict_dense(net2d, raw2d, tile_shape=(30, 30))
    as_uint8 = predict_dense(net2d, raw2d, tile_shape=(30, 30), out_dtype=np.uint8)
    assert as_uint8.dtype == np.uint8
    np.testing.assert_array_equal(as_uint8, np.rint(prob * 255).astype(np.uint8))
    as_float16 = predict_dense(net2d, raw2d, tile_shape=(30, 30), out_dtype="float16")
    assert as_float16.dtype == np.float16
    assert np.abs(as_float16 - prob).max() < 1e-3


def test_progress_callback_reaches_total(net2d, raw2d):
    calls = []
    predict_dense(net2d, raw2d, tile_shape=(25, 25), progress=lambda *a: calls.append(a))
    assert len(calls) > 1
    assert calls[-1][0] == calls[-1][1] == 43 * 56
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_progress_bar_on_stderr(net2d, raw2d, capsys):
    predict_dense(net2d, raw2d, tile_shape=(25, 25), progress=True)
    err = capsys.readouterr().err
    assert "Mvox/s" in err and "100.0 %" in err


def test_progress_bar_writes_plain_lines_off_a_terminal():
    log = io.StringIO()  # a log file or pipe: no carriage returns, one line per report
    bar = ProgressBar(log, log_interval=0.0)
    for done in (10, 20, 30):
        bar(done, 30, done / 10)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 3 and "done in" in lines[-1]


def test_training_mode_is_restored(net2d, raw2d):
    net2d.train()
    predict_dense(net2d, raw2d, tile_shape=(30, 30))
    assert net2d.training
    net2d.eval()


def test_tile_plan_is_exact():
    axis = AxisGeometry(fov=17, step=6)
    tiling = tile_axis(axis, n_out=100, tile_in=60)
    assert tiling.tile_out % 6 == 0 and tiling.tile_in == tiling.tile_out + 16
    ends = [s + tiling.tile_out for s in tiling.starts]
    assert tiling.starts[0] == 0 and ends[-1] == 100
    assert all(b <= a for a, b in zip(ends, tiling.starts[1:]))  # no gap
    overlap = sum(a - b for a, b in zip(ends, tiling.starts[1:]))
    assert overlap < 6 * len(tiling.starts)
    small = tile_axis(axis, n_out=4, tile_in=500)
    assert small.starts == (0,) and small.tile_out == 6
    plan = plan_tiles((axis, axis), (100, 100), (60, 60))
    assert plan.n_tiles == len(tiling.starts) ** 2
    assert 1 < plan.redundancy < 2.5


def test_tile_sizes_are_the_architecture_calculators_mfp_sizes(net3d):
    def user(internal):
        return [*internal[1:], internal[0]]

    spec = net3d.spec
    arch = compute_architecture(
        [user(f) for f in spec.filters], [user(p) for p in spec.pool], None, 3, mfp=[True] * 3
    )
    geometry = net_geometry(net3d)
    assert arch.fov == geometry.fov and arch.mfp_stride == geometry.step
    for axis, valid in zip(geometry.axes, arch.valid_inputs):
        assert list(valid[:10]) == [axis.input_size(k * axis.step) for k in range(1, 11)]


def test_mirror_indices_are_numpy_symmetric():
    values = np.arange(5)
    index = np.arange(-7, 12)
    np.testing.assert_array_equal(
        values[mirror_indices(index, 5)], np.pad(values, (7, 7), mode="symmetric")[: len(index)]
    )


def test_errors_are_one_paragraph(net2d, net3d, raw2d):
    mlp_net = make_net(filters=[(3, 3)], pool=[(2, 2)], nof=(3,), mlp=(5,))
    with pytest.raises(PredictionError, match="MLP"):
        predict_dense(mlp_net, raw2d)
    with pytest.raises(PredictionError, match="channels"):
        predict_dense(net2d, np.zeros((2, 40, 40), np.float32))
    with pytest.raises(PredictionError, match="3D net"):
        predict_dense(net3d, raw2d)
    with pytest.raises(PredictionError, match="field of view"):
        predict_dense(net2d, np.zeros((1, 10, 40), np.float32))
    with pytest.raises(PredictionError, match="method"):
        predict_dense(net2d, raw2d, method="fast")
    with pytest.raises(PredictionError, match="out_dtype"):
        predict_dense(net2d, raw2d, out_dtype=np.int32)
    with pytest.raises(PredictionError, match="tile_shape"):
        predict_dense(net2d, raw2d, tile_shape=(30, 30, 30))
