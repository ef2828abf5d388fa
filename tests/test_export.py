"""``elektronn-export``: bioimage.io packages tested by bioimageio.core, and loading them back."""

import dataclasses
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
import torch
from test_predict_cli import save_run, tiny_net
from test_predict_unet import make_unet
from tiny import run_cli as run_train

from elektronn.errors import UserError
from elektronn.export.cli import main
from elektronn.export.convert import ExportError, to_dense_net
from elektronn.net.mfp import mfp_forward
from elektronn.net.model import ElektronnNet
from elektronn.net.paramfile import load_params, save_params
from elektronn.predict import predict_dense
from elektronn.predict.cli import main as predict_main

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers

pytest.importorskip("bioimageio.core")


def run_export(*args):
    return subprocess.run(
        [sys.executable, "-m", "elektronn.export.cli", *map(str, args)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A uint8 (x, y, z) volume, as training images are stored."""
    path = tmp_path_factory.mktemp("sample") / "raw.h5"
    raw = np.random.default_rng(1).integers(0, 256, (90, 84, 9), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f["raw"] = raw
    return path, raw


#: Tiny nets by test id, and the (min, step, output offset) the calculator gives their x, y axes.
NETS = {
    "2d": (lambda: tiny_net(2), (10, 2, -8)),
    "3d-anisotropic": (lambda: tiny_net(3), (10, 2, -8)),
    "unet-2d": (lambda: make_unet([3, 3], [2, 1], (2, 3), 2, True, "nearest"), (18, 2, -16)),
    "unet-3d-anisotropic": (
        lambda: make_unet([[3, 3, 1], [3, 3, 3]], [[2, 2, 1], [1, 1, 1]], (2, 3), 3, True),
        (18, 2, -16),
    ),
}


#: The validation history of :func:`trained_run`: (step, valid_loss, valid_error %) per row.
HISTORY = ((10, 0.61, 30.5), (20, 0.42, 18.25), (30, 0.47, 21.0))


def trained_run(folder, model, name="tiny"):
    """A save directory as a training leaves it: the parameter file (step 30, its data named
    by an absolute path) and the validation history in ``Backup/``."""
    save_dir = folder / name
    (save_dir / "Backup").mkdir(parents=True)
    config = {"save_name": name, "target": "nll", "data_path": f"{folder}/data/",
              "d_files": [("raw_0.h5", "raw")]}  # fmt: skip
    save_params(save_dir / f"{name}_end.param", model, config, extra={"step": 30})
    rows = np.array(HISTORY, dtype=float)
    nan = np.full(len(rows), np.nan)
    history = np.column_stack([rows[:, 0], nan, nan, nan, nan, rows[:, 1], nan, nan])
    np.save(save_dir / "Backup" / f"{name}.history.npy", history)
    errors = np.column_stack([rows[:, 0], nan, nan, rows[:, 2]])
    np.save(save_dir / "Backup" / f"{name}.errors.npy", errors)
    return save_dir


@pytest.fixture(scope="module", params=list(NETS))
def package(request, tmp_path_factory, sample):
    """A tiny net's save directory and its exported, bioimageio.core-tested package."""
    folder = tmp_path_factory.mktemp(f"export-{request.param}")
    model = NETS[request.param][0]()
    save_dir = trained_run(folder, model)
    out = folder / "model.zip"
    voxel_size = "4,4" if model.n_dim == 2 else "4,4,50"
    result = run_export(save_dir, out, "--sample", f"{sample[0]}:raw", "--author", "A. Tester",
                        "--content", "cell membranes", "--voxel-size", voxel_size,
                        "--maintainer", "bioimageiobot")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return model, save_dir, out, result.stdout


def test_package_passes_bioimageio_core(package):
    *_, out, stdout = package
    assert "bioimageio.core test: passed" in stdout
    names = set(zipfile.ZipFile(out).namelist())
    assert {"rdf.yaml", "dense_net.ts", "weights.pt", "dense_net.py", "elektronn.param",
            "cover.png", "README.md", "test_input.npy", "test_output.npy", "sample_input.tif",
            "sample_output.tif"} <= names  # fmt: skip


def test_onnx_weights_pass_bioimageio_core(package):
    # torch.export's ONNX graph, run by onnxruntime at several sizes and batch sizes
    from bioimageio.core import test_description

    *_, out, _ = package
    summary = test_description(out, weight_format="onnx")
    assert summary.status == "passed", summary.format()
    assert any("Run onnx inference" in d.name for d in summary.details)


def test_description_tells_a_curator_what_and_where(package):
    from bioimageio.spec import load_model_description

    model, _, out, _ = package
    descr = load_model_description(out, perform_io_checks=False)
    size = "4x4 nanometer" if model.n_dim == 2 else "4x4x50 nanometer"
    assert "cell membranes" in descr.description and "electron microscopy" in descr.description
    assert size in descr.description
    assert {"electron-microscopy", "cell-membranes", "semantic-segmentation"} <= set(descr.tags)
    assert [m.github_user for m in descr.maintainers] == ["bioimageiobot"]
    for tensor in (descr.inputs[0], descr.outputs[0]):
        space = tensor.axes[2:]
        assert [(a.unit, a.scale) for a in space][-2:] == [("nanometer", 4.0)] * 2
        assert tensor.sample_tensor is not None
    if model.n_dim == 3:
        assert (space[0].id, space[0].scale) == ("z", 50.0)


def test_readme_has_the_validation_scores_and_no_machine_paths(package):
    *_, out, _ = package
    text = zipfile.ZipFile(out).read("README.md").decode()
    validation = text.split("# Validation", 1)[1].split("\n## ", 1)[0]
    # the exported weights are of step 30 (valid error 21 %), the best step is 20 (18.25 %)
    assert "| 30 | 0.47 | 21.00 % |" in validation
    assert "| 20 | 0.42 | 18.25 % |" in validation
    assert str(out.parent) not in text and "`raw_0.h5:raw`" in text


def test_float_input_in_0_1_gives_the_uint8_probabilities(package, sample):
    from bioimageio.core import predict

    model, *_, out, _ = package
    raw = np.load(zipfile.ZipFile(out).open("test_input.npy"))
    as_uint8 = predict(model=out, inputs=raw).members["prob"].data.to_numpy()
    as_float = predict(model=out, inputs=raw.astype(np.float32) / 255)
    np.testing.assert_allclose(as_float.members["prob"].data.to_numpy(), as_uint8, atol=1e-6)


def test_description_sizes_come_from_the_calculator(package, request):
    from bioimageio.spec import load_model_description

    model, _, out, _ = package
    descr = load_model_description(out, perform_io_checks=False)
    spatial = descr.inputs[0].axes[2:]
    # tiny_net: filters 4 then 3, pool 2 -> fov 9, MFP-valid inputs 10, 12, 14, ...
    # U-Nets: two 3-convs per level, pool 2 -> fov 17, valid inputs 18, 20, 22, ... (step S = 2)
    size_min, step, offset = NETS[request.node.callspec.params["package"]][1]
    assert [(a.size.min, a.size.step) for a in spatial][-2:] == [(size_min, step)] * 2
    assert [a.size.offset for a in descr.outputs[0].axes[2:]][-2:] == [offset] * 2
    # uint8 scaling is the model's first step (bioimage.io preprocessing cannot see the type)
    assert descr.weights.pytorch_state_dict.architecture.kwargs["gain"] == pytest.approx(1 / 255)


def test_torchscript_equals_elektronn_predict(package, sample):
    model, *_, out, _ = package
    raw = sample[1][..., :5]
    with zipfile.ZipFile(out) as archive:
        scripted = torch.jit.load(archive.open("dense_net.ts"))
    x = torch.from_numpy(raw.transpose(2, 0, 1).astype(np.float32) / 255)  # (z, x, y)
    x = x[:, None] if model.n_dim == 2 else x[None, None]
    with torch.no_grad():
        prob = scripted(x).numpy()
    prob = prob.transpose(1, 0, 2, 3) if model.n_dim == 2 else prob[0]  # (c, z, x, y)
    expected = predict_dense(model, raw[None], axes="cxyz")  # (c, x, y, z)
    np.testing.assert_allclose(prob.transpose(0, 2, 3, 1), expected, atol=1e-5)


def test_elektronn_predict_reads_the_package(package, sample, tmp_path):
    _, save_dir, out, _ = package
    for model_arg, name in ((out, "zip"), (save_dir, "param")):
        argv = [str(model_arg), f"{sample[0]}:raw", str(tmp_path / f"{name}.h5"), "--gpu=false"]
        assert predict_main(argv) == 0
    with h5py.File(tmp_path / "zip.h5") as a, h5py.File(tmp_path / "param.h5") as b:
        # the tiles may differ (the default tile is timed per save directory): fp32 tolerance
        np.testing.assert_allclose(a["prob"][()], b["prob"][()], atol=1e-6, rtol=0)


def test_param_file_zip_fine_tunes(package, tmp_path, tiny_data):
    model, _, out, _ = package
    if model.n_dim != 2 or model.spec.architecture == "unet":
        pytest.skip("one fine-tuning run is enough")
    assert load_params(out)["net"] == model.spec.to_dict()
    config = tmp_path / "finetune.py"
    config.write_text(
        f"save_path = {str(tmp_path / 'runs')!r}\nsave_name = 'ft'\nn_dim = 2\n"
        "desired_input = 20\nfilters = [4, 3]\npool = [2, 1]\nnof_filters = [3, 3]\n"
        "batch_size = 1\nn_lab = 2\nmode = 'img-img'\ndata_path = 'data/'\n"
        "label_path = 'data/'\nd_files = [('raw_0.h5', 'raw')]\nl_files = [('lab_0.h5', 'lab')]\n"
        "n_steps = 1\nhistory_freq = [1]\nmonitor_batch_size = 1\nplot_on = False\n"
        f"param_file = {str(out)!r}\nbackground_processes = False\n"
    )
    result = run_train(config, "--gpu=false", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Initialised from {out}: 6 copied" in result.stdout


def test_dense_net_equals_mfp_for_maxabs_and_tanh():
    torch.manual_seed(0)
    spec = dataclasses.replace(
        tiny_net(3).spec, pooling_mode=("maxabs",) * 2, activation_func=("tanh", "sig")
    )
    model = ElektronnNet(spec).eval()
    x = torch.randn(2, 1, 4, 22, 24)
    with torch.no_grad():
        torch.testing.assert_close(
            to_dense_net(model, "nll")(x), torch.softmax(mfp_forward(model, x), 1)
        )


@pytest.mark.parametrize("target", ["affinity", "regression"])
def test_the_dense_net_outputs_what_prediction_writes_for_each_target(target):
    """Affinities leave the package as probabilities (sigmoid), as elektronn-predict writes
    them, so mws segments the package's output like elektronn's."""
    from elektronn.net.losses import probabilities

    torch.manual_seed(1)
    model = ElektronnNet(tiny_net(2).spec).eval()
    x = torch.randn(1, 1, 22, 24)
    with torch.no_grad():
        torch.testing.assert_close(
            to_dense_net(model, target)(x), probabilities(mfp_forward(model, x), target)
        )


def export_error(capsys, *args) -> str:
    """stderr of an in-process ``elektronn-export`` that must fail with exit code 2."""
    assert main([*map(str, args)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("elektronn-export: error: ") and "Traceback" not in err
    return err


def test_export_errors_are_user_errors():
    # every command catches just UserError and prints it as one paragraph
    assert issubclass(ExportError, UserError)


def test_bad_input(sample, tmp_path, capsys):
    save_dir = save_run(tmp_path, tiny_net(2))
    exists = tmp_path / "exists.zip"
    exists.touch()
    assert "exists; use --overwrite" in export_error(capsys, save_dir, exists)
    mlp_dir = save_run(tmp_path, tiny_net(2, mlp=(5,)), name="mlp")
    assert "Layer 'mlp 0'" in export_error(capsys, mlp_dir, tmp_path / "mlp.zip")
    assert "--sample FILE.h5:KEY" in export_error(capsys, save_dir, tmp_path / "x.zip")
    err = export_error(capsys, save_dir, tmp_path / "y.zip", "--sample", sample[0], "--cite", "x")
    assert "TEXT=URL_OR_DOI" in err
    err = export_error(capsys, save_dir, tmp_path / "z.zip", "--sample", sample[0],
                       "--license", "no-such-licence")  # fmt: skip
    assert "bioimageio.spec rejects the package: license" in err
    err = export_error(capsys, save_dir, tmp_path / "v.zip", "--sample", sample[0],
                       "--voxel-size", "4,4,50")  # fmt: skip
    assert "--voxel-size '4,4,50' must be 2 positive numbers" in err
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("rdf.yaml", "type: model\n")
    assert predict_main([str(foreign), f"{sample[0]}:raw", str(tmp_path / "p.h5")]) == 2
    assert "not exported by elektronn-export" in capsys.readouterr().err


def test_export_with_isbi_sample(shared_data, tmp_path, capsys):
    save_dir = save_run(tmp_path, tiny_net(2))
    raw = shared_data / "isbi2012" / "train-volume.h5"
    cite = "Cardona et al. 2010=10.1371/journal.pbio.1000502"
    argv = [save_dir, tmp_path / "isbi.zip", "--sample", f"{raw}:raw", "--license", "MIT",
            "--cite", cite]  # fmt: skip
    assert main([*map(str, argv)]) == 0
    assert "bioimageio.core test: passed" in capsys.readouterr().out
