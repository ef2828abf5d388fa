"""Where and in which arithmetic a net runs: the device from ``--gpu`` (or the ``device``
option) and the ``precision`` autocast; shared by training and prediction."""

from __future__ import annotations

import contextlib
import platform
import warnings

import torch

from .config import ConfigError


def parse_gpu(text: str | bool | int) -> str | bool | int:
    """``'auto'`` stays, ``'false'``/False means CPU, anything else must be a device number."""
    if isinstance(text, (bool, int)):
        return text
    lowered = text.strip().lower()
    if lowered == "auto":
        return "auto"
    if lowered in ("false", "cpu", "none"):
        return False
    try:
        return int(lowered)
    except ValueError:
        raise ConfigError(
            f"--gpu={text!r} is not understood: use --gpu=auto, --gpu=false (CPU) or a GPU number."
        ) from None


def free_gpu_with_most_memory() -> int | None:
    """Index of the CUDA device with the most free memory, None without CUDA."""
    if not torch.cuda.is_available():
        return None
    free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
    return max(range(len(free)), key=free.__getitem__)


def select_device(gpu: str | bool | int) -> torch.device:
    """The torch device for a parsed ``--gpu`` value.

    Raises
    ------
    ConfigError
        If a GPU number is asked for that does not exist.
    """
    if gpu is False:
        return torch.device("cpu")
    if gpu == "auto":
        index = free_gpu_with_most_memory()
        return torch.device("cpu") if index is None else torch.device("cuda", index)
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not 0 <= gpu < n:
        available = f"GPUs 0..{n - 1}" if n else "no CUDA GPU"
        raise ConfigError(
            f"--gpu={gpu} asks for CUDA device {gpu}, but this machine has {available}. "
            f"Use --gpu=false for the CPU or --gpu=auto."
        )
    return torch.device("cuda", gpu)


AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context the forward passes run in: autocast for ``'bf16'``, nothing for fp32."""
    dtype = AUTOCAST_DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def cpu_lacks_bf16() -> bool:
    """True on an x86 CPU without bfloat16 instructions (AVX-512 BF16 or AMX).

    There torch emulates bf16 convolutions: a 2D U-Net training step was 9x slower than in
    fp32 on a 2-core AVX2 EPYC (benchmarks/RESULTS.md). Other CPUs are not judged.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return not (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def check_precision(precision: str, device: torch.device) -> None:
    """Refuses bf16 on a GPU without bfloat16 arithmetic (before Ampere) before training,
    and warns of it on a CPU that would emulate it."""
    if precision == "bf16" and device.type == "cpu" and cpu_lacks_bf16():
        warnings.warn(
            "Option 'precision' is 'bf16', but this CPU has no bfloat16 instructions "
            "(AVX-512 BF16 or AMX): torch emulates them, many times slower than fp32. "
            "Use precision = 'fp32' here.",
            stacklevel=2,
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise ConfigError(
            f"Option 'precision' is 'bf16', but {name} ({device}) has no bfloat16 "
            "arithmetic. Use precision = 'fp32'."
        )
