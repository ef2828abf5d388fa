"""target='affinity': exact targets from augmented ID patches, bad input, training end to end."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from makers import image_data, write_h5
from tiny import run_cli

from elektronn.config import ConfigError
from elektronn.data import DataError
from elektronn.data.affinities import affinity_target, relabel_consecutive
from elektronn.data.synthetic import cell_ids, render_raw
from elektronn.net.losses import affinity_errors, compute_loss
from elektronn.net.paramfile import load_params

BIG = np.uint64(2**62)


def id_cube(shape=(24, 24, 12), n_cells=10, seed=0) -> np.ndarray:
    """Cell IDs 1..n (x, y, z), with a hole of unlabelled (0) voxels."""
    ids = cell_ids(shape, n_cells, np.random.default_rng(seed)) + 1
    ids[:5, :5] = 0
    return ids


def test_flipped_3d_batches_carry_the_exact_affinities_of_their_uint64_ids(tmp_path):
    ids = id_cube()
    # the image shows the IDs; the labels are the same IDs beyond 2**62 (0 stays unlabelled)
    labels = np.where(ids == 0, np.uint64(0), BIG + ids.astype(np.uint64))
    offsets = [(-1, 0, 0), (0, -1, 0), (0, 0, -2), (3, 0, 0)]
    data = image_data(
        tmp_path, ids.astype(np.float32), labels, n_dim=3, patch_shape=(8, 10, 10),
        int_offset=(1, 2, 2), target="affinity", affinity_offsets=offsets,
        anisotropic_data=False, seed=3,
    )  # fmt: skip
    assert data.n_lab == 4
    x, y = data.getbatch(6, flip=True)
    assert y.shape == (6, 4, 6, 6, 6) and y.dtype == np.float32
    internal = [(o[2], o[0], o[1]) for o in offsets]  # (z, x, y)
    for patch, target in zip(x[:, 0], y, strict=True):
        # the offsets reach beyond the labels (1, 2, 2): pairs to the IDs around them count
        shown = relabel_consecutive(np.rint(patch).astype(np.int64))
        expected = affinity_target(shown, internal)[:, 1:-1, 2:-2, 2:-2]
        np.testing.assert_array_equal(target, expected)
    assert (y == -1).any() and (y == 0).any() and (y == 1).any()


def test_strided_2d_batches_with_descriptors_have_offsets_then_six_channels(tmp_path):
    ids = id_cube((30, 30, 3))
    data = image_data(
        tmp_path, ids.astype(np.float32), ids.astype(np.uint32), n_dim=2, patch_shape=(20, 20),
        int_offset=(4, 4), stride=(2, 2), target="affinity", lsd_sigma=2.0,
    )  # fmt: skip
    assert data.n_lab == 2 + 6
    x, y = data.getbatch(2, flip=False)
    assert y.shape == (2, 8, 6, 6)
    lsd = y[:, 2:]
    assert ((lsd == -1) | ((lsd >= 0) & (lsd <= 1))).all()


@pytest.mark.parametrize(
    ("labels", "kwargs", "words"),
    [
        (np.ones((24, 24, 4), np.float32), {}, "needs object IDs as integers"),
        (np.ones((24, 24, 4), bool), {}, "needs object IDs as integers"),
        (np.ones((24, 24, 4), np.int32), {"affinity_offsets": [(0, 12)]}, "as long as the label"),
        (np.ones((24, 24, 4), np.int32), {"affinity_offsets": [(1, 0, 0)]}, "needs 2 entries"),
    ],
)
def test_bad_affinity_input_is_one_paragraph(tmp_path, labels, kwargs, words):
    with pytest.raises((DataError, ConfigError), match=words):
        image_data(
            tmp_path, np.zeros((24, 24, 4), np.float32), labels, n_dim=2, patch_shape=(16, 16),
            int_offset=(2, 2), target="affinity", **kwargs,
        )  # fmt: skip


def test_the_loss_balances_each_channel_and_ignores_masked_pairs():
    labels = torch.tensor([[[1.0, 1.0, 1.0, 0.0, -1.0]]])  # (bs, 1 channel, 5 voxels)
    logits = torch.zeros_like(labels)
    # every known pair at p = 0.5 costs log 2 whatever its weight: balanced weights average 1
    assert compute_loss(logits, labels, "affinity").item() == pytest.approx(np.log(2))
    # "same object" everywhere is right for 3 of 4 known pairs; balancing makes the one
    # boundary pair weigh as much as the three others together
    sure = torch.tensor([[[5.0, 5.0, 5.0, 5.0, -5.0]]])
    wrong_once = compute_loss(sure, labels, "affinity").item()
    assert wrong_once == pytest.approx(0.5 * 5.0067 * 4 / 4 + 0.5 * 0.0067 * 4 / 4, rel=1e-3)
    error, baseline = affinity_errors(sure, labels)
    assert error.item() == pytest.approx(0.25) and baseline.item() == pytest.approx(0.25)


def write_id_cubes(folder, shape=(44, 44, 26)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(2):
        rng = np.random.default_rng(i)
        ids = cell_ids(shape, 10, rng).astype(np.uint64) + BIG
        edges = np.zeros(shape, np.uint8)
        edges[1:] |= (ids[1:] != ids[:-1]).astype(np.uint8)
        edges[:, 1:] |= (ids[:, 1:] != ids[:, :-1]).astype(np.uint8)
        write_h5(folder / f"raw_{i}.h5", raw=render_raw(edges, rng))
        write_h5(folder / f"ids_{i}.h5", ids=ids)


def affinity_config(tmp_path, extra):
    text = f"""
    save_path = {str(tmp_path / "runs")!r}
    save_name = "aff"
    target = "affinity"
    batch_size = 2
    n_lab = None
    mode = "img-img"
    data_path = "data/"
    label_path = "data/"
    d_files = [("raw_0.h5", "raw"), ("raw_1.h5", "raw")]
    l_files = [("ids_0.h5", "ids"), ("ids_1.h5", "ids")]
    valid_cubes = [1]
    n_steps = 6
    max_runtime = 300
    history_freq = [3]
    monitor_batch_size = 2
    plot_on = False
    SGD_params = dict(LR=0.01, momentum=0.9)
    """
    path = tmp_path / "aff.py"
    path.write_text(textwrap.dedent(text) + textwrap.dedent(extra))
    return path


CNN_2D = """
n_dim = 2
desired_input = 30
filters = [6, 4]
pool = [2, 1]
nof_filters = [4, 4]
affinity_offsets = [(-1, 0), (0, -1), (-4, 0)]
warp_on = 0.5
"""

CNN_3D = """
n_dim = 3
desired_input = [18, 18, 10]
filters = [(4, 4, 3), (3, 3, 3)]
pool = [(2, 2, 1), (1, 1, 1)]
nof_filters = [4, 4]
background_processes = 1
"""

UNET_3D = """
architecture = 'unet'
n_dim = 3
desired_input = [20, 20, 20]
filters = [(3, 3, 3), (3, 3, 3)]
pool = [(2, 2, 2), 1]
nof_filters = [4, 8]
lsd_sigma = 2.0
affinity_dice = True
"""


@pytest.mark.slow
@pytest.mark.parametrize("net", [CNN_2D, CNN_3D, UNET_3D], ids=["cnn2d", "cnn3d", "unet3d"])
def test_affinity_nets_train_and_store_their_offsets(tmp_path, net):
    write_id_cubes(tmp_path / "data")
    result = run_cli(affinity_config(tmp_path, net), "--gpu=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "affinity error" in result.stdout and "BCEm=" in result.stdout
    params = load_params(tmp_path / "runs" / "aff" / "aff_end.param")
    offsets = params["config"]["affinity_offsets"]
    n_dim = params["config"]["n_dim"]
    assert all(len(o) == n_dim for o in offsets)
    expected = len(offsets) + (10 if "lsd_sigma" in net else 0)
    assert params["config"]["n_lab"] == expected


@pytest.mark.slow
def test_an_affinity_run_resumes(tmp_path):
    write_id_cubes(tmp_path / "data")
    config = affinity_config(tmp_path, CNN_2D)
    assert run_cli(config, "--gpu=false", "--set", "n_steps=4", cwd=tmp_path).returncode == 0
    save_dir = tmp_path / "runs" / "aff"
    resumed = run_cli("--resume", save_dir, "--set", "n_steps=7", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (save_dir / "aff_end.param").exists()


def test_lsd_sigma_with_a_class_target_is_refused(tmp_path):
    write_id_cubes(tmp_path / "data")
    config = affinity_config(tmp_path, CNN_2D + "target = 'nll'\nn_lab = 2\nlsd_sigma = 2.0\n")
    result = run_cli(config, "--gpu=false", cwd=tmp_path)
    assert result.returncode == 2 and "lsd_sigma" in result.stderr


def test_n_lab_not_matching_the_offsets_is_refused(tmp_path):
    write_id_cubes(tmp_path / "data")
    result = run_cli(affinity_config(tmp_path, CNN_2D + "n_lab = 2\n"), "--gpu=false", cwd=tmp_path)
    assert result.returncode == 2 and "3 outputs" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "args"),
    [("", ("--nproc=2",)), ("MFP = [True, False]\n", ())],
    ids=["data-parallel", "mfp"],
)
def test_a_2d_affinity_cnn_trains_data_parallel_and_with_mfp(tmp_path, extra, args):
    write_id_cubes(tmp_path / "data")
    config = affinity_config(tmp_path, CNN_2D + extra)
    result = run_cli(config, "--gpu=false", *args, "--set", "n_steps=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "affinity error at 0.5; majority" in result.stdout


def test_patches_on_disk_have_the_same_targets_as_in_memory(tmp_path):
    ids = id_cube((30, 30, 12))
    labels = np.where(ids == 0, np.uint64(0), BIG + ids.astype(np.uint64))
    batches = []
    for in_memory in (True, False):
        data = image_data(
            tmp_path, ids.astype(np.float32), labels, n_dim=3, patch_shape=(8, 12, 12),
            int_offset=(1, 2, 2), target="affinity", lsd_sigma=1.5, seed=5,
            data_in_memory=in_memory,
        )  # fmt: skip
        batches.append(data.getbatch(3, flip=True, warp_on=True)[1])
    np.testing.assert_array_equal(*batches)
