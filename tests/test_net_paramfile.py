"""Parameter files: round trip, atomic writes, adaptive loading, clear errors."""

import dataclasses
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from elektronn.arch import compute_architecture
from elektronn.net import paramfile
from elektronn.net.model import build_model
from elektronn.net.paramfile import (
    ParamFileError,
    build_model_from_params,
    load_into_model,
    load_params,
    save_params,
)


def config(filters=(3, 3), nof=(4, 6), mlp=(), **options) -> SimpleNamespace:
    """A small 2D net: conv layers of the given filter sizes (pool 2 then 1)."""
    pool = [(2, 2)] + [(1, 1)] * (len(nof) - 1)
    values = dict(
        mode="img-scalar" if mlp else "img-img",
        n_dim=2,
        arch=SimpleNamespace(
            filters=[(f, f) for f in filters], pool=pool, input_shape=options.pop("input", None)
        ),
        nof_filters=list(nof),
        pooling_mode=["max"] * len(nof),
        activation_func=["relu"] * (len(nof) + len(mlp)),
        dropout_rates=[],
        MLP_layers=list(mlp),
        target="nll",
        rnn_layer_kwargs=None,
        MFP=[],
    )
    values.update(options)
    return SimpleNamespace(**values)


def test_round_trip(tmp_path):
    model = build_model(config(), n_ch=2, n_lab=3)
    cfg = {
        "n_steps": np.int64(10),
        "filters": [3, 3],
        "save_path": tmp_path,
        "ps": (7, np.float32(1)),
    }
    extra = {"step": 5, "optimizer": {"state": {0: {"momentum_buffer": torch.ones(3)}}}}
    path = save_params(tmp_path / "net.param", model, cfg, extra=extra)
    checkpoint = load_params(path)
    assert checkpoint["format"] == "elektronn-params" and checkpoint["version"] == 1
    assert (checkpoint["n_ch"], checkpoint["n_lab"]) == (2, 3)
    assert checkpoint["config"] == {
        "n_steps": 10,
        "filters": [3, 3],
        "save_path": str(tmp_path),
        "ps": (7, 1.0),
    }
    assert "arch" not in checkpoint  # the calculator recomputes it from the net description
    assert torch.equal(
        checkpoint["extra"]["optimizer"]["state"][0]["momentum_buffer"], torch.ones(3)
    )
    rebuilt = build_model_from_params(path)
    assert not rebuilt.training
    x = torch.randn(1, 2, 12, 12)
    torch.testing.assert_close(rebuilt(x), model.eval()(x), rtol=0, atol=0)


def test_a_file_with_the_former_arch_entry_still_loads(tmp_path):
    """Files written before the entry was dropped held the CNN geometry under 'arch'."""
    model = build_model(config(), n_ch=1, n_lab=2)
    new = load_params(save_params(tmp_path / "new.param", model, None))
    geometry = dataclasses.asdict(compute_architecture([3, 3], [2, 1], None, 2))
    old = tmp_path / "old.param"
    torch.save({**new, "arch": paramfile.plain(geometry, "arch")}, old)
    assert load_params(old)["arch"]["fov"] == (8, 8)
    rebuilt = build_model_from_params(old)
    x = torch.randn(1, 1, 12, 12)
    torch.testing.assert_close(rebuilt(x), model.eval()(x), rtol=0, atol=0)


def test_round_trip_of_an_mlp_net(tmp_path):
    model = build_model(config(mlp=(7,), input=(12, 12)), n_ch=1, n_lab=2)
    path = save_params(tmp_path / "mlp.param", model, None)
    rebuilt = build_model_from_params(path)
    x = torch.randn(3, 1, 12, 12)
    torch.testing.assert_close(rebuilt(x), model.eval()(x), rtol=0, atol=0)


def test_unstorable_values_are_refused_before_writing(tmp_path):
    model = build_model(config(), 1, 2)
    with pytest.raises(TypeError, match=r"config\['fn'\]"):
        save_params(tmp_path / "x.param", model, {"fn": object()})
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "net-LAST.param"
    old = build_model(config(), 1, 2)
    save_params(path, old, {"run": "old"})
    before = path.read_bytes()

    def disk_full(obj, f):
        f.write(b"partial garbage")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(paramfile.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_params(path, build_model(config(), 1, 2), {"run": "new"})
    assert path.read_bytes() == before
    assert load_params(path)["config"] == {"run": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net-LAST.param"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_parameter_files_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = save_params(tmp_path / "net.param", build_model(config(), 1, 2), None)
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == mode


def test_adaptive_loading_with_changed_shapes(tmp_path):
    small = build_model(config(filters=(3, 3), nof=(4, 6), mlp=(5,), input=(12, 12)), 1, 2)
    big = build_model(config(filters=(5, 3), nof=(6, 6), mlp=(5,), input=(12, 12)), 1, 2)
    fresh = {k: v.clone() for k, v in big.state_dict().items()}
    report = load_into_model(big, small.state_dict())
    assert report.adapted == [
        "conv_blocks.0.conv.weight",
        "conv_blocks.0.conv.bias",
        "conv_blocks.1.conv.weight",
    ]
    assert report.skipped == ["mlp.0.linear.weight"]
    assert "output_layer.linear.weight" in report.copied
    assert "conv_blocks.1.conv.bias" in report.copied
    w_big, w_small = big.conv_blocks[0].conv.weight, small.conv_blocks[0].conv.weight
    assert torch.equal(w_big[:4, :, 1:4, 1:4], w_small)  # centred in the 5x5 filter
    assert torch.equal(
        w_big[4:], fresh["conv_blocks.0.conv.weight"][4:]
    )  # new filters keep their init
    assert torch.equal(w_big[:4, :, 0], fresh["conv_blocks.0.conv.weight"][:4, :, 0])
    assert torch.equal(big.conv_blocks[0].conv.bias[:4], small.conv_blocks[0].conv.bias)
    assert torch.equal(big.conv_blocks[1].conv.weight[:, :4], small.conv_blocks[1].conv.weight)
    assert torch.equal(big.mlp[0].linear.weight, fresh["mlp.0.linear.weight"])
    assert f"{len(report.copied)} copied, 3 adapted (" in str(report)
    assert "1 skipped (mlp.0.linear.weight)" in str(report)

    shrunk = build_model(config(filters=(3, 3), nof=(4, 6)), 1, 2)
    report = load_into_model(shrunk, big.state_dict())
    assert torch.equal(
        shrunk.conv_blocks[0].conv.weight, big.conv_blocks[0].conv.weight[:4, :, 1:4, 1:4]
    )
    assert report.unused == ["mlp.0.linear.bias", "mlp.0.linear.weight", "output_layer.linear.bias",
                             "output_layer.linear.weight"]  # fmt: skip
    assert "output_layer.conv.weight" in report.skipped


def test_strict_loading_lists_every_difference():
    small = build_model(config(filters=(3, 3)), 1, 2)
    big = build_model(config(filters=(5, 3)), 1, 2)
    with pytest.raises(ParamFileError, match=r"conv_blocks.0.conv.weight has shape \(4, 1, 3, 3\)"):
        load_into_model(big, small.state_dict(), strict=True)
    report = load_into_model(small, small.state_dict(), strict=True)
    assert len(report.copied) == len(small.state_dict())


@pytest.mark.parametrize(
    "content",
    [b"", b"not a torch file at all\n", b"PK\x03\x04 truncated zip"],
    ids=["empty", "text", "truncated"],
)
def test_corrupt_files_give_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.param"
    path.write_bytes(content)
    with pytest.raises(ParamFileError, match="broken.param cannot be read") as info:
        load_params(path)
    assert "\n" not in str(info.value)


def test_truncated_parameter_file(tmp_path):
    path = save_params(tmp_path / "net.param", build_model(config(), 1, 2), None)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ParamFileError, match="truncated"):
        build_model_from_params(path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(ParamFileError, match="nothing.param does not exist"):
        load_params(tmp_path / "nothing.param")
    foreign = Path(tmp_path / "foreign.pt")
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ParamFileError, match="foreign.pt is a torch file but not an elektronn"):
        load_params(foreign)
    old_version = tmp_path / "v0.param"
    torch.save({"format": "elektronn-params", "version": 0}, old_version)
    with pytest.raises(ParamFileError, match="version 0"):
        load_params(old_version)
