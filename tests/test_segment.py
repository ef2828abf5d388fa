"""elektronn-segment: the methods on small synthetic volumes, the same result whatever the
blocks, OME-Zarr labels that viewers read, resume after a killed run, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from scipy import ndimage
from skimage.metrics import adapted_rand_error

from elektronn.data.synthetic import cell_ids
from elektronn.segment import SegmentationError, SegmentParams, segment_array, segment_volume
from elektronn.segment.cli import main

SHAPE = (48, 48, 24)
#: Affinity offsets (x, y, z): nearest neighbours, then long range.
OFFSETS = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (4, 0, 0), (0, 4, 0), (0, 0, 2)]


def cells(shape=SHAPE, n=20, seed=0) -> np.ndarray:
    """Neurite-like cell IDs (x, y, z), 1.. (Voronoi regions drifting along z)."""
    return cell_ids(shape, n, np.random.default_rng(seed)).astype(np.int64) + 1


def borders(ids: np.ndarray) -> np.ndarray:
    """True where a face neighbour has another ID."""
    edge = np.zeros(ids.shape, bool)
    for axis in range(ids.ndim):
        differ = np.diff(ids, axis=axis) != 0
        edge[(slice(None),) * axis + (slice(1, None),)] |= differ
        edge[(slice(None),) * axis + (slice(0, -1),)] |= differ
    return edge


def boundary_map(ids: np.ndarray, noise=0.1, seed=1) -> np.ndarray:
    """Boundary probability: the ID borders blurred, with noise."""
    rng = np.random.default_rng(seed)
    blurred = ndimage.gaussian_filter(borders(ids).astype(np.float32), 0.7) * 1.5
    return np.clip(blurred + rng.normal(0, noise, ids.shape), 0, 1).astype(np.float32)


def class_map(ids: np.ndarray, **kwargs) -> np.ndarray:
    """A two-class prediction (c, x, y, z): class 0 interior, class 1 boundary."""
    boundary = boundary_map(ids, **kwargs)
    return np.stack([1 - boundary, boundary])


def affinities(ids: np.ndarray, noise=0.2, seed=2) -> np.ndarray:
    """Affinities (c, x, y, z) for OFFSETS: 1 where v and v + offset share an ID, noisy."""
    rng = np.random.default_rng(seed)
    channels = []
    for offset in OFFSETS:
        there = np.full(ids.shape, -1)
        src = tuple(slice(0, n - o) for n, o in zip(ids.shape, offset))
        there[src] = ids[tuple(slice(o, n) for n, o in zip(ids.shape, offset))]
        same = (there == ids).astype(np.float32)
        channels.append(np.clip(same + rng.normal(0, noise, ids.shape), 0, 1))
    return np.stack(channels).astype(np.float32)


def write_prediction(path: Path, prediction: np.ndarray, offsets=None, offset=(3, 4, 5)) -> str:
    """An h5 prediction as elektronn-predict writes it: (c, x, y, z) with an offset."""
    with h5py.File(path, "w") as f:
        data = f.create_dataset("prob", data=prediction)
        data.attrs["offset"] = np.asarray(offset)
        if offsets is not None:
            data.attrs["affinity_offsets"] = np.asarray(offsets)
    return f"{path}:prob"


def read_ids(path: Path, key: str = "segments") -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[key][...]


def are(a: np.ndarray, b: np.ndarray, ignore=()) -> float:
    return adapted_rand_error(a.astype(np.int64), b.astype(np.int64), ignore_labels=ignore)[0]


# --- the methods, in memory ---------------------------------------------------------------


def test_watershed_and_mws_find_the_cells():
    ids = cells()
    seg = segment_array(class_map(ids), SegmentParams(method="watershed"))
    assert seg.dtype == np.uint32 and seg.min() >= 1
    assert are(ids, seg) < 0.08
    seg = segment_array(affinities(ids), SegmentParams(method="mws"), OFFSETS)
    assert are(ids, seg) < 0.02
    # without agglomeration (threshold 0) the distance seeds over-segment; merging repairs it
    loose = SegmentParams(method="watershed", seeds="distance", merge_threshold=0.0)
    merged = SegmentParams(method="watershed", seeds="distance", merge_threshold=0.5)
    many, few = segment_array(class_map(ids), loose), segment_array(class_map(ids), merged)
    assert many.max() > few.max()
    assert are(ids, few) < are(ids, many)


def test_components_connectivity_and_size_filter():
    fg = np.zeros((12, 12, 12), np.float32)
    fg[1:4, 1:4, 1:4] = 1  # a cube
    fg[4:6, 4:6, 4:6] = 1  # touches it only at a corner
    fg[9, 9, 9] = 1  # one voxel
    prob = np.stack([1 - fg, fg])
    six = segment_array(prob, SegmentParams(method="components", connectivity=6))
    corner = segment_array(prob, SegmentParams(method="components", connectivity=26))
    small = segment_array(prob, SegmentParams(method="components", min_size=2))
    assert six.max() == 3 and corner.max() == 2 and small.max() == 2
    assert small[9, 9, 9] == 0 and six[9, 9, 9] == 3  # numbered in raster order
    assert (six > 0).sum() == fg.sum()


# --- blockwise: the same whatever the blocks ----------------------------------------------


@pytest.mark.parametrize("method", ["components", "watershed", "mws"])
def test_one_block_and_eight_blocks_agree(tmp_path, method):
    ids = cells()
    if method == "mws":
        spec = write_prediction(tmp_path / "pred.h5", affinities(ids), OFFSETS)
    else:
        spec = write_prediction(tmp_path / "pred.h5", class_map(ids))
    options = {"foreground_class": 0} if method == "components" else {}
    whole = segment_volume(spec, str(tmp_path / "one.h5"), method=method, block=SHAPE,
                           progress=False, **options)  # fmt: skip
    halves = tuple(n // 2 for n in SHAPE)
    split = segment_volume(spec, str(tmp_path / "eight.h5"), method=method, block=halves,
                           progress=False, **options)  # fmt: skip
    assert whole.blocks == (1, 1, 1) and split.blocks == (2, 2, 2)
    one, eight = read_ids(tmp_path / "one.h5"), read_ids(tmp_path / "eight.h5")
    assert split.n_fragments > whole.n_fragments  # the blocks did cut objects
    if method == "components":
        np.testing.assert_array_equal(one, eight)
    else:
        assert are(one, eight) <= 0.01
        assert are(ids, eight) < 0.1
    with h5py.File(tmp_path / "eight.h5") as f:
        assert list(f["segments"].attrs["offset"]) == [3, 4, 5]
        assert json.loads(f["segments"].attrs["elektronn"])["complete"] is True
    assert not Path(f"{tmp_path / 'eight.h5'}.segments.elektronn-work").exists()


# --- OME-Zarr labels ----------------------------------------------------------------------


def ome_prediction(path: Path, prediction: np.ndarray, start=(2, 3, 1)) -> np.ndarray:
    """An elektronn OME-Zarr prediction: on a larger input grid, the valid region inside."""
    from elektronn.predict.stores import OutputPlan, create_output_store

    grid = tuple(n + 2 * s for n, s in zip(prediction.shape[1:], start))
    valid = {"valid_offset": list(start), "valid_shape": list(prediction.shape[1:])}
    plan = OutputPlan((prediction.shape[0], *grid), "float32", (prediction.shape[0], *grid),
                      (8.0, 8.0, 30.0), (80.0, 0.0, 300.0), ("nanometer",) * 3,
                      ("interior", "boundary"), valid)  # fmt: skip
    store = create_output_store(path, plan)
    box = tuple(slice(s, s + n) for s, n in zip(start, prediction.shape[1:]))
    store.level0()[(slice(None), *box)] = prediction
    return np.asarray(grid)


def test_labels_in_the_ome_zarr_image_open_in_viewers(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader
    from ome_zarr_models.v05.image_label import ImageLabel

    ids = cells()
    image = tmp_path / "pred.zarr"
    grid = ome_prediction(image, class_map(ids))
    result = segment_volume(str(image), str(image), block=(24, 24, 12), progress=False)
    assert result.n_segments > 10
    group = zarr.open_group(str(image / "labels" / "watershed"), mode="r")
    ImageLabel.from_zarr(group)  # validates as NGFF image-label
    nodes = list(Reader(parse_url(str(image)))())
    label = next(n for n in nodes if n.load(Label))
    transforms = label.metadata["coordinateTransformations"][0]
    assert {"type": "translation", "translation": [300.0, 0.0, 80.0]} in transforms
    assert {"type": "scale", "scale": [30.0, 8.0, 8.0]} in transforms
    image_label = zarr.open_group(str(image / "labels" / "watershed")).attrs["ome"]["image-label"]
    assert image_label["source"] == {"image": "../../"}
    stored = np.asarray(label.data[0])  # (z, y, x)
    assert stored.shape == tuple(grid[::-1]) and np.issubdtype(stored.dtype, np.unsignedinteger)
    labels = np.transpose(stored, (2, 1, 0))
    inside = labels[2:50, 3:51, 1:25]
    assert labels.sum() == inside.sum() and inside.min() >= 1  # the border stays 0
    assert are(ids, inside) < 0.1
    sizes = {p["label-value"]: p["voxels"] for p in image_label["properties"]}
    assert sizes == dict(zip(*np.unique(inside, return_counts=True)))
    assert zarr.open_group(str(image / "labels" / "watershed")).attrs["elektronn"]["complete"]


# --- resume -------------------------------------------------------------------------------

KILLED_RUN = """
import os, signal
from elektronn.segment import passes, segment_volume
calls = []
def dies(*args, **kwargs):
    calls.append(1)
    if len(calls) == {at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
real = passes.{name}
passes.{name} = dies
segment_volume({prediction!r}, {output!r}, block=(12, 12, 12), progress=False)
"""


@pytest.mark.parametrize("killed_in", ["fragments", "labels"])
@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_labels(tmp_path, killed_in):
    """A run killed (SIGKILL) in the first or the last pass leaves no finished-looking output;
    the same command again computes only the missing blocks and gives the same labels."""
    ids = cells()
    image = tmp_path / "pred.zarr"
    ome_prediction(image, class_map(ids))
    name = "block_fragments" if killed_in == "fragments" else "relabel"
    script = KILLED_RUN.format(at=6, name=name, prediction=str(image), output=str(image))
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True)
    assert run.returncode == -9, run.stderr.decode()
    assert not (image / "labels" / "watershed").exists()  # nothing looks finished
    resumed = segment_volume(str(image), str(image), block=(12, 12, 12), progress=False)
    if killed_in == "fragments":
        assert resumed.computed["fragments"] == 4 * 4 * 2 - 5  # (48, 48, 24) in 12^3 blocks
    else:
        assert resumed.computed["fragments"] == resumed.computed["edges"] == 0
        assert 0 < resumed.computed["labels"] < 5 * 5 * 3  # the image: (52, 54, 26)
    again = segment_volume(str(image), str(tmp_path / "fresh.h5"), block=(12, 12, 12),
                           progress=False)  # fmt: skip
    fresh = read_ids(tmp_path / "fresh.h5")
    ome = np.transpose(np.asarray(zarr.open_array(str(image / "labels/watershed/0"))), (2, 1, 0))
    np.testing.assert_array_equal(ome[2:50, 3:51, 1:25], fresh)
    assert again.n_segments == resumed.n_segments
    assert zarr.open_group(str(image / "labels"), mode="r").attrs["ome"]["labels"] == ["watershed"]


# --- bad input ----------------------------------------------------------------------------


def test_bad_input_is_one_paragraph_and_exit_2(tmp_path, capsys):
    ids = cells((24, 24, 12), 6)
    classes = write_prediction(tmp_path / "classes.h5", class_map(ids))
    wrong = write_prediction(tmp_path / "wrong.h5", class_map(ids), offsets=OFFSETS)
    out = str(tmp_path / "out.h5")

    def error(*argv: str) -> str:
        assert main(list(argv)) == 2
        message = capsys.readouterr().err
        assert message.startswith("elektronn-segment: error: ") and "Traceback" not in message
        return message

    assert "needs affinities" in error(classes, out, "--method", "mws")
    assert "6 affinity offsets" in error(wrong, out)
    assert "smaller than the halo" in error(classes, out, "--block-shape", "4,24,12")
    assert "--block-shape" in error(classes, out, "--block-shape", "4,x")
    assert "does not exist" in error(str(tmp_path / "none.h5"), out)
    assert main([classes, out, "--block-shape", "12,12,12"]) == 0
    capsys.readouterr()
    assert "another segmentation" in error(classes, out, "--threshold", "0.3")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["segments"] = np.zeros((5, 5, 5), np.uint32)
        f["floats"] = np.zeros((24, 24, 12), np.float32)
    assert "exists with shape (5, 5, 5)" in error(classes, str(tmp_path / "other.h5"))
    assert "unsigned integers" in error(classes, f"{tmp_path / 'other.h5'}:floats")
    assert "not an OME-Zarr image" in error(classes, str(tmp_path / "new.zarr"))
    with pytest.raises(SegmentationError, match="--connectivity"):
        SegmentParams(method="components", connectivity=8)


@pytest.mark.slow
def test_command_line_in_a_subprocess(tmp_path):
    spec = write_prediction(tmp_path / "pred.h5", class_map(cells((24, 24, 12), 6)))
    out = tmp_path / "seg.h5"
    command = ["elektronn-segment", spec, f"{out}:cells", "--block-shape", "12,12,12"]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "segments" in run.stdout and "blocks (2, 2, 1)" in run.stdout
    assert read_ids(out, "cells").max() >= 4
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0 and "complete already" in again.stdout
    bad = subprocess.run([*command[:3], "--method", "mws"], capture_output=True, text=True)
    assert bad.returncode == 2 and "needs affinities" in bad.stderr
