"""Opt-in speed-ups of the training step: mixed precision, channels-last, ``torch.compile``.

(The autocast context and the bf16 check live in :mod:`elektronn.device`, since prediction
uses them too.)

All three are off by default, so a run is exactly reproducible in fp32 unless asked
otherwise. They are meant for GPUs (bf16 tensor cores, cuDNN's channels-last kernels, fused
kernels); on a CPU with bfloat16 instructions (AVX-512 BF16, AMX) bf16 and channels-last help
too, ``torch.compile`` much less (figures: benchmarks/RESULTS.md).

* ``precision = 'bf16'`` runs the forward passes of training and monitoring under
  ``torch.autocast`` with bfloat16; the weights, the gradients, the optimiser state and the
  loss stay float32. bfloat16 has float32's range, so no loss scaling is needed, which keeps
  the closure-based optimisers (CG's line search, L-BFGS) exact. float16 is not offered: it
  needs a gradient scaler that cannot drive those optimisers.
* ``channels_last = True`` stores the conv weights and the batches as NHWC / NDHWC.
* ``compile = True`` (or a mode such as ``'max-autotune'``) trains through
  ``torch.compile(model)``; the monitor and the previews use the uncompiled model, which
  shares the same parameters, so they cause no recompilation.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

import torch

from ..config import ConfigError


def check_compile(compile_option: Any, device: torch.device) -> None:
    """Refuses ``torch_compile`` on a CPU without the C++ compiler that torch's inductor calls
    (``$CXX``, else g++ / clang++ on macOS), which would otherwise fail deep inside the
    first training step."""
    if compile_option is False or device.type != "cpu":
        return
    compiler = os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")
    if shutil.which(compiler) is None:
        raise ConfigError(
            f"Option 'torch_compile' is {compile_option!r}, but compiling for the CPU needs the "
            f"C++ compiler {compiler!r} (or one named by the environment variable CXX), and it "
            "was not found. Install one, or set torch_compile = False."
        )


def memory_format(tensor_dim: int, channels_last: bool) -> torch.memory_format:
    """The layout of a ``tensor_dim``-dimensional batch or conv weight."""
    if channels_last and tensor_dim == 4:
        return torch.channels_last
    if channels_last and tensor_dim == 5:
        return torch.channels_last_3d
    return torch.contiguous_format


def to_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x`` in channels-last order when asked for and ``x`` is an image batch."""
    return x.contiguous(memory_format=memory_format(x.dim(), channels_last))


def set_layout(model: torch.nn.Module, channels_last: bool) -> None:
    """Stores the conv weights channels-last (in place; other parameters are unaffected)."""
    if not channels_last:
        return
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.nn.Parameter) and weight.dim() in (4, 5):
            weight.data = to_layout(weight.data, True)


def compiled(net: torch.nn.Module, compile_option: Any) -> torch.nn.Module:
    """``net`` itself, or ``torch.compile(net)`` for ``compile = True`` / a mode name."""
    if compile_option is False:
        return net
    mode = None if compile_option is True else compile_option
    return torch.compile(net, mode=mode)
