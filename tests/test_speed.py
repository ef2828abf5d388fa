"""The opt-in speed-ups (issue 10): channels-last, bf16 autocast and torch.compile train the
same net as the plain fp32 run, within the precision each one promises."""

import platform
import warnings
from pathlib import Path

import pytest
import torch
from tiny import run_cli, tiny_config

from elektronn import device
from elektronn.config import ConfigError
from elektronn.net.paramfile import load_params
from elektronn.train.speed import check_compile

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers

SHORT = "n_steps = 6\nrandom_seed = 3\n"


def train(tmp_path, name: str, *sets: str) -> dict[str, torch.Tensor]:
    """The final weights of a 6-step tiny run with ``--set`` options ``sets``."""
    config = tiny_config(tmp_path, SHORT)
    options = [arg for value in (f"save_name={name!r}", *sets) for arg in ("--set", value)]
    result = run_cli(config, "--gpu=false", *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return load_params(tmp_path / "runs" / name / f"{name}_end.param")["state_dict"]


def largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[key] - b[key]).abs().max()) for key in a)


def test_channels_last_and_bf16_train_the_fp32_net_within_their_precision(tmp_path, tiny_data):
    plain = train(tmp_path, "plain")
    channels_last = train(tmp_path, "channels_last", "channels_last=True")
    bf16 = train(tmp_path, "bf16", "precision='bf16'")
    assert largest_difference(plain, channels_last) < 1e-6  # a layout, not a new arithmetic
    # bf16 forward passes change the numbers (so autocast was on) but not the training
    assert 1e-6 < largest_difference(plain, bf16) < 1e-2
    assert {w.dtype for w in bf16.values()} == {torch.float32}  # the weights stay fp32


def cpu_compiler_missing() -> bool:
    try:
        check_compile(True, torch.device("cpu"))
    except ConfigError:
        return True
    return False


@pytest.mark.skipif(cpu_compiler_missing(), reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_training_matches_eager(tmp_path, tiny_data):
    eager = train(tmp_path, "eager")
    compiled = train(tmp_path, "compiled", "torch_compile=True")
    assert largest_difference(eager, compiled) < 1e-5


def test_unsupported_precision_is_refused_before_anything_is_written(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path), "--set", "precision='fp16'", cwd=tmp_path)
    assert result.returncode == 2
    assert "'precision'" in result.stderr and "'bf16'" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_compile_without_a_cpu_compiler_is_refused_before_anything_is_written(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path), "--gpu=false", "--set", "torch_compile=True",
                     cwd=tmp_path, env_extra={"CXX": "no-such-compiler++"})  # fmt: skip
    assert result.returncode == 2
    assert "'torch_compile'" in result.stderr and "no-such-compiler++" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_bf16_on_a_cpu_that_would_emulate_it_warns(monkeypatch):
    monkeypatch.setattr(device, "cpu_lacks_bf16", lambda: True)
    with pytest.warns(UserWarning, match="precision = 'fp32'"):
        device.check_precision("bf16", torch.device("cpu"))
    monkeypatch.setattr(device, "cpu_lacks_bf16", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        device.check_precision("bf16", torch.device("cpu"))
        device.check_precision("fp32", torch.device("cpu"))


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists() or platform.machine() != "x86_64",
                    reason="reads the CPU flags of x86 Linux")  # fmt: skip
def test_bf16_instructions_are_read_from_the_cpu():
    flags = set(Path("/proc/cpuinfo").read_text().split())
    assert device.cpu_lacks_bf16() == (not {"avx512_bf16", "amx_tile"} & flags)
