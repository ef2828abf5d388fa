"""``elektronn-evaluate``: scores beside baselines, offsets, whole-split errors, clear errors."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from test_predict_cli import save_run, tiny_net

from elektronn.data.synthetic import build_membrane_volume
from elektronn.evaluate import metrics
from elektronn.evaluate.cli import main
from elektronn.evaluate.split import evaluate_split
from elektronn.net.model import ElektronnNet, NetSpec
from elektronn.net.paramfile import save_params

pytest.importorskip("skimage")


def run_evaluate(*args):
    return subprocess.run(
        [sys.executable, "-m", "elektronn.evaluate.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )


def noisy_prediction(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Probabilities (2, ...) that are right about 90 % of the time."""
    rng = np.random.default_rng(seed)
    p1 = np.clip(labels + rng.normal(0, 0.35, labels.shape), 0, 1).astype(np.float32)
    return np.stack([1 - p1, p1])


@pytest.fixture
def files(tmp_path):
    """Boundary labels (x, y, z) and a prediction of their centre with its offset recorded."""
    _, labels = build_membrane_volume((48, 40, 3), n_cells=10, seed=3)
    labels = labels.astype(np.uint8)
    offset = (4, 3, 1)
    prob = noisy_prediction(labels[4:44, 3:35, 1:2])
    with h5py.File(tmp_path / "lab.h5", "w") as f:
        f["lab"] = labels
    with h5py.File(tmp_path / "prob.h5", "w") as f:
        f["prob"] = prob
        f["prob"].attrs["offset"] = offset
    return tmp_path, labels, prob, offset


@pytest.mark.slow
def test_end_to_end_scores_and_json(files):
    folder, labels, prob, (ox, oy, oz) = files
    out = folder / "scores.json"
    result = run_evaluate(
        folder / "prob.h5", folder / "lab.h5:lab", "--gt", "boundary", "--json", out
    )
    assert result.returncode == 0, result.stderr
    assert "adapted_rand_error" in result.stdout and "baseline" in result.stdout
    scores = json.loads(out.read_text())
    truth = labels[ox : ox + 40, oy : oy + 32, oz : oz + 1]
    wrong = (prob[1] >= 0.5) != (truth == 1)
    assert scores["classification"]["pixel_error"] == pytest.approx(wrong.mean())
    assert scores["classification"]["baseline"]["pixel_error"] == pytest.approx(truth.mean())
    from skimage.metrics import adapted_rand_error

    gt = metrics.truth_segments(truth, "boundary")
    seg = metrics.segment(prob[1], 0.5, "components")
    expected = adapted_rand_error(gt, seg, ignore_labels=(0,))[0]
    assert scores["segmentation"]["adapted_rand_error"] == pytest.approx(expected)


def test_best_threshold_is_the_brute_force_minimum():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 5000)
    p1 = np.clip(labels * 0.3 + rng.random(5000) * 0.7, 0, 0.999)
    t, err = metrics.best_threshold(p1, labels)
    brute = min(np.mean((p1 >= k / 1000) != labels) for k in range(1000))
    assert err == pytest.approx(brute) and np.mean((p1 >= t) != labels) == pytest.approx(err)


def test_class_scores_and_regression():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    scores = metrics.class_scores(predicted, labels, 3)
    assert scores["pixel_error"] == pytest.approx(2 / 6)
    assert scores["classes"]["1"]["precision"] == pytest.approx(2 / 3)
    assert scores["classes"]["2"]["recall"] == pytest.approx(0.5)
    assert scores["classes"]["0"]["iou"] == pytest.approx(1 / 3)
    reg = metrics.regression(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    assert (reg["mse"], reg["mae"], reg["baseline"]["mse"]) == (2.0, 1.0, 2.25)


def test_watershed_fills_the_boundaries(files):
    _, labels, prob, _ = files
    seg = metrics.segment(prob[1], 0.5, "watershed")
    assert seg.min() >= 1


def test_bad_input(files, capsys):
    folder, *_ = files
    with h5py.File(folder / "bare.h5", "w") as f:
        f["prob"] = np.zeros((2, 40, 32, 1), np.float32)
    assert main([str(folder / "bare.h5"), str(folder / "lab.h5")]) == 2
    assert "no 'offset' attribute" in capsys.readouterr().err
    assert main([str(folder / "prob.h5"), str(folder / "lab.h5"), "--offset", "10,10,0"]) == 2
    err = capsys.readouterr().err
    assert "(48, 40, 3)" in err and "(2, 40, 32, 1)" in err and "(10, 10, 0)" in err
    assert main([str(folder / "prob.h5"), str(folder / "missing.h5")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_whole_mnist_test_split(shared_data, tmp_path):
    mnist = shared_data / "mnist" / "mnist.pkl.gz"
    spec = {
        **tiny_net(2, mlp=(10,)).spec.to_dict(),
        "n_lab": 10,
        "input_shape": (26, 26),
        "filters": ((3, 3), (3, 3)),
    }
    model = ElektronnNet(NetSpec(**spec))
    config = {
        "save_name": "mnist",
        "target": "nll",
        "mode": "img-scalar",
        "data_class_name": "MNISTData",
        "data_load_kwargs": {"path": str(mnist), "convert2image": True},
    }
    path = save_params(tmp_path / "mnist_end.param", model, config)
    scores = evaluate_split(path, "test")["test split"]
    assert scores["n_examples"] == 10000
    assert 50 < scores["error"] <= 100 and scores["baseline"]["error"] == pytest.approx(88.65)


@pytest.mark.slow
def test_isbi_boundary_labels(shared_data, tmp_path, capsys):
    labels_file = shared_data / "isbi2012" / "train-labels.h5"
    with h5py.File(labels_file) as f:
        labels = f["labels"][:128, :128, :2]
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["prob"] = noisy_prediction(labels)
    argv = [
        str(tmp_path / "p.h5"),
        f"{labels_file}:labels",
        "--offset",
        "0,0,0",
        "--gt",
        "boundary",
        "--per-slice",
        "--json",
        str(tmp_path / "s.json"),
    ]
    assert main(argv) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    baseline = scores["classification"]["baseline"]["pixel_error"]
    assert scores["classification"]["pixel_error"] < baseline == pytest.approx(labels.mean())


def test_an_ome_zarr_prediction_scores_as_its_h5_twin(tmp_path):
    """On a cubic volume, reading (c, z, y, x) as (c, x, y, z) would score silently wrong."""
    from elektronn.predict.cli import main as predict

    raw, labels = build_membrane_volume((28, 28, 28), n_cells=12, seed=5)
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["raw"], f["lab"] = raw, labels.astype(np.uint8)
    save_dir = save_run(tmp_path, tiny_net(3))
    for out in ("p.h5", "p.zarr"):
        assert (
            predict(
                [str(save_dir), f"{tmp_path / 'data.h5'}:raw", str(tmp_path / out), "--gpu=false"]
            )
            == 0
        )
    scores = []
    for out in ("p.h5", "p.zarr"):
        assert (
            main(
                [
                    str(tmp_path / out),
                    f"{tmp_path / 'data.h5'}:lab",
                    "--gt",
                    "boundary",
                    "--json",
                    str(tmp_path / "s.json"),
                ]
            )
            == 0
        )
        scores.append(json.loads((tmp_path / "s.json").read_text()))
    assert scores[0] == scores[1]
    with h5py.File(tmp_path / "p.h5") as f:
        assert scores[0]["classification"]["n_voxels"] == np.prod(f["prob"].shape[1:])


def test_a_2d_nets_stack_is_segmented_per_slice(files, capsys):
    folder, labels, *_ = files
    with h5py.File(folder / "stack.h5", "w") as f:
        f["prob"] = noisy_prediction(labels)
        f["prob"].attrs["offset"] = (0, 0, 0)
        f["prob"].attrs["net_dims"] = 2
    args = [str(folder / "stack.h5"), str(folder / "lab.h5"), "--gt", "boundary"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "segments in 3 z slices, each on its own" in out and "48 x 40" not in out
    assert main([*args, "--no-per-slice"]) == 0
    assert "segments in 3D" in capsys.readouterr().out


def test_a_segmentation_is_scored_block_by_block_as_scikit_image_scores_it(
    tmp_path, capsys, monkeypatch
):
    from skimage.metrics import adapted_rand_error, variation_of_information

    from elektronn.evaluate import cli

    truth = np.repeat(np.arange(1, 5), 15).reshape(6, 10)[:, :, None] * np.ones((1, 1, 7), int)
    truth = np.kron(truth, np.ones((5, 1, 1), int))[:, :, :7]  # (30, 10, 7), 4 objects
    truth[:, :2] = 0  # unlabelled
    segments = truth.copy()
    segments[truth == 2] = 1  # a merge
    segments[(truth == 3) & (np.arange(7) > 3)] = 9  # a split
    with h5py.File(tmp_path / "ids.h5", "w") as f:
        f["truth"] = truth.astype(np.uint64)
        f["seg"] = segments.astype(np.uint32)
        f["seg"].attrs["offset"] = (0, 0, 0)
    args = [f"{tmp_path / 'ids.h5'}:seg", f"{tmp_path / 'ids.h5'}:truth", "--segments", "--gt",
            "ids", "--json", str(tmp_path / "s.json")]  # fmt: skip
    monkeypatch.setattr(cli, "SCORE_BLOCK", (7, 4, 3))  # many blocks
    assert main(args) == 0
    scores = json.loads((tmp_path / "s.json").read_text())["segments"]
    are = adapted_rand_error(truth, segments, ignore_labels=(0,))[0]
    split, merge = variation_of_information(truth, segments, ignore_labels=(0,))
    assert scores["adapted_rand_error"] == pytest.approx(are, abs=1e-9)
    assert scores["voi_split"] == pytest.approx(split * np.log(2), abs=1e-9)  # nats
    assert scores["voi_merge"] == pytest.approx(merge * np.log(2), abs=1e-9)
    assert scores["voi_unit"] == "nats" and scores["baseline"]["voi_split"] == 0

    def iou(t, s):
        a, b = truth == t, segments == s
        return (a & b).sum() / (a | b).sum()

    objects, ids = np.unique(truth[truth > 0]), np.unique(segments[segments > 0])
    found = [t for t in objects if max(iou(t, s) for s in ids) >= 0.5]
    right = [s for s in ids if max(iou(t, s) for t in objects) >= 0.5]
    assert scores["n_objects"] == len(objects) and scores["n_segments"] == len(ids)
    assert scores["object_recall"] == pytest.approx(len(found) / len(objects))
    assert scores["object_precision"] == pytest.approx(len(right) / len(ids))
    assert "segments (baseline: one segment everywhere" in capsys.readouterr().out
    assert main([*args[:3], "--gt", "boundary"]) == 2
    assert "--segments scores a segmentation" in capsys.readouterr().err
