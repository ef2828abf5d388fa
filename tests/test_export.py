"""``elektronn-export``: bioimage.io packages validated by bioimageio.core, and loading them back."""

import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
import torch
from test_predict_cli import run_cli as run_predict
from test_predict_cli import save_run, tiny_net
from tiny import run_cli as run_train

from elektronn.export.convert import to_dense_net
from elektronn.net.paramfile import load_params
from elektronn.predict import predict_dense

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


@pytest.fixture(scope="module", params=[2, 3], ids=["2d", "3d-anisotropic"])
def package(request, tmp_path_factory, sample):
    """A tiny net's save directory and its exported, bioimageio.core-tested package."""
    folder = tmp_path_factory.mktemp(f"export{request.param}")
    model = tiny_net(request.param)
    save_dir = save_run(folder, model)
    out = folder / "model.zip"
    result = run_export(save_dir, out, "--sample", f"{sample[0]}:raw", "--author", "A. Tester")
    assert result.returncode == 0, result.stdout + result.stderr
    return model, save_dir, out, result.stdout


def test_package_passes_bioimageio_core(package):
    *_, out, stdout = package
    assert "bioimageio.core test: passed" in stdout
    names = set(zipfile.ZipFile(out).namelist())
    assert {"rdf.yaml", "dense_net.ts", "weights.pt", "dense_net.py", "elektronn.param",
            "cover.png", "README.md", "test_input.npy", "test_output.npy"} <= names  # fmt: skip


def test_description_sizes_come_from_the_calculator(package):
    from bioimageio.spec import load_model_description

    model, _, out, _ = package
    descr = load_model_description(out, perform_io_checks=False)
    spatial = descr.inputs[0].axes[2:]
    # tiny_net: filters 4 then 3, pool 2 -> fov 9, MFP-valid inputs 10, 12, 14, ...
    assert [(a.size.min, a.size.step) for a in spatial][-2:] == [(10, 2), (10, 2)]
    assert [a.size.offset for a in descr.outputs[0].axes[2:]][-2:] == [-8, -8]
    steps = {step.id: step.kwargs for step in descr.inputs[0].preprocessing}
    assert steps["scale_linear"].gain == pytest.approx(1 / 255)


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
    expected = predict_dense(model, raw[None], raw_order="xyz")  # (c, x, y, z)
    np.testing.assert_allclose(prob.transpose(0, 2, 3, 1), expected, atol=1e-5)


def test_elektronn_predict_reads_the_package(package, sample, tmp_path):
    _, save_dir, out, _ = package
    for model_arg, name in ((out, "zip"), (save_dir, "param")):
        result = run_predict(model_arg, f"{sample[0]}:raw", tmp_path / f"{name}.h5", "--gpu=false")
        assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "zip.h5") as a, h5py.File(tmp_path / "param.h5") as b:
        np.testing.assert_array_equal(a["prob"][()], b["prob"][()])


def test_param_file_zip_fine_tunes(package, tmp_path, tiny_data):
    model, _, out, _ = package
    if model.n_dim != 2:
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
    model = tiny_net(3)
    for block in model.conv_blocks:
        block.pooling_mode, block.activation = "maxabs", "tanh"
        block._act = torch.tanh
    spec = model.spec.__class__(**{**model.spec.to_dict(), "pooling_mode": ("maxabs",) * 2,
                                   "activation_func": ("tanh",) * 2})  # fmt: skip
    model.spec = spec
    x = torch.randn(2, 1, 4, 23, 25)
    dense = to_dense_net(model, "nll")(x)
    from elektronn.net.mfp import mfp_forward

    torch.testing.assert_close(dense, torch.softmax(mfp_forward(model, x), 1))


def test_bad_input(package, sample, tmp_path):
    _, save_dir, out, _ = package
    exists = run_export(save_dir, out, "--sample", sample[0], "--no-test")
    assert exists.returncode == 2 and "exists; use --overwrite" in exists.stderr
    mlp_dir = save_run(tmp_path, tiny_net(2, mlp=(5,)), name="mlp")
    mlp = run_export(mlp_dir, tmp_path / "mlp.zip", "--sample", sample[0])
    assert mlp.returncode == 2 and "Layer 'mlp 0'" in mlp.stderr, mlp.stderr
    no_sample = run_export(save_dir, tmp_path / "x.zip")
    assert no_sample.returncode == 2 and "--sample FILE.h5:KEY" in no_sample.stderr
    bad_cite = run_export(save_dir, tmp_path / "y.zip", "--sample", sample[0], "--cite", "x")
    assert bad_cite.returncode == 2 and "TEXT=URL_OR_DOI" in bad_cite.stderr
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("rdf.yaml", "type: model\n")
    result = run_predict(foreign, f"{sample[0]}:raw", tmp_path / "p.h5", "--gpu=false")
    assert result.returncode == 2 and "not exported by elektronn-export" in result.stderr
    assert "Traceback" not in result.stderr + mlp.stderr + exists.stderr


def test_export_with_isbi_sample(shared_data, tmp_path):
    save_dir = save_run(tmp_path, tiny_net(2))
    raw = shared_data / "isbi2012" / "train-volume.h5"
    result = run_export(save_dir, tmp_path / "isbi.zip", "--sample", f"{raw}:raw",
                        "--license", "MIT", "--cite", "Cardona et al. 2010=10.1371/journal.pbio.1000502")  # fmt: skip
    assert result.returncode == 0 and "test: passed" in result.stdout, result.stderr
