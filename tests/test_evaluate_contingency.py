"""The block-by-block contingency table scores exactly as scikit-image does."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from skimage.metrics import adapted_rand_error, variation_of_information

from elektronn.evaluate.contingency import IDError, score_arrays


def volumes(seed: int, ids: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Truth with unlabelled voxels (0) and a segmentation that splits and merges it."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, ids, (30, 20, 10)).astype(np.uint32)
    segments = (truth // 2 + 3 * (rng.random(truth.shape) < 0.2)).astype(np.uint64)
    return truth, segments


@pytest.mark.parametrize("seed", [0, 1])
def test_block_by_block_equals_scikit_image(tmp_path, seed):
    truth, segments = volumes(seed)
    segments[0] = 2**40  # IDs beyond 32 bits
    ours = score_arrays(
        zarr.create_array(str(tmp_path / "t.zarr"), data=truth, chunks=(7, 7, 7)),
        zarr.create_array(str(tmp_path / "s.zarr"), data=segments, chunks=(7, 7, 7)),
        block=(7, 9, 4),
    )
    # scikit-image sizes its tables by the largest ID: it gets the IDs renumbered
    renumbered = np.unique(segments, return_inverse=True)[1].reshape(segments.shape)
    truth64 = truth.astype(np.int64)
    are, precision, recall = adapted_rand_error(truth64, renumbered, ignore_labels=(0,))
    split, merge = variation_of_information(truth64, renumbered, ignore_labels=(0,))
    expected = {"adapted_rand_error": are, "rand_precision": precision, "rand_recall": recall,
                "voi_split": split, "voi_merge": merge}  # fmt: skip
    for name, value in expected.items():
        assert abs(ours[name] - value) < 1e-9, name
    assert ours["n_voxels"] == np.count_nonzero(truth) and ours["voi_unit"] == "bits"
    nats = score_arrays(truth, segments, block=(30, 20, 10), unit="nats")
    assert abs(nats["voi_split"] - split * np.log(2)) < 1e-9
    assert abs(nats["voi_merge"] - merge * np.log(2)) < 1e-9
    assert 0 < ours["adapted_rand_error"] < 1 and ours["voi_split"] > 0 and ours["voi_merge"] > 0


def test_float_negative_or_misshapen_ids_are_refused():
    truth, segments = volumes(0)
    with pytest.raises(IDError, match="dtype float32"):
        score_arrays(truth, segments.astype(np.float32), (8, 8, 8))
    with pytest.raises(IDError, match="negative IDs"):
        score_arrays(truth.astype(np.int64) - 1, segments, (8, 8, 8))
    with pytest.raises(IDError, match="cannot be compared"):
        score_arrays(truth, segments[1:], (8, 8, 8))
