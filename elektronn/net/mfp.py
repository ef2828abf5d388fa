"""Max Fragment Pooling (MFP): the dense output of a strided net in one forward pass.

A net with total pooling stride ``S`` predicts only every ``S``-th voxel. The dense map
needs the outputs for all ``S^d`` input shifts (shift-and-stitch, :func:`shift_and_stitch`).
MFP computes them in one pass and shares the work of the early layers (reference §2.7): at
each pooling layer with factor ``p`` and for every window offset ``o`` in ``[0, p)^d`` the
conv output is cropped to ``[o : len - p + o + 1]`` and pooled; these ``p^d`` fragments are
stacked on the batch axis and travel through the rest of the net together. Each fragment
remembers the input shift it stands for (``offset += o * stride``, ``stride *= p``); at the
end, fragment outputs are interleaved into the dense map
(``dense[..., a::s_x, b::s_y] = fragment``).

Unlike ELEKTRONN 1.x this works for any pool factor: a fragment has length ``len - p + 1``,
which the MFP-valid input sizes make divisible by ``p`` (``(len + 1) % p == 0``); the
original required ``len % p == 1``, which is the same thing only for ``p = 2``.

Every length (fragments, FOV, stride) comes from the net's architecture calculator
(``model.arch``), which also refuses inputs that are not MFP-valid, naming the layer.

Both functions take an :class:`~elektronn.net.model.ElektronnNet` with a conv output and a
batch ``(bs, ch, *spatial)``, and return dense logits ``(bs, n_lab, *(spatial - fov + 1))``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def _require_conv_output(model: Any) -> None:
    if not model.spec.conv_output:
        raise ValueError(
            "Dense prediction needs a net whose output layer is convolutional (img-img); this "
            "net ends in fully connected layers and predicts one value per input patch."
        )


def _fragment_pool(
    block: Any, h: Tensor, lengths: Sequence[int]
) -> tuple[Tensor, list[tuple[int, ...]]]:
    """All ``p^d`` pooled fragments of a conv response, stacked on the batch axis.

    ``lengths`` are the fragment lengths before pooling (``pooled * p``, from the calculator).
    """
    windows = list(itertools.product(*(range(p) for p in block.pool)))
    fragments = [
        block.finish(h[(..., *(slice(o, o + n) for o, n in zip(window, lengths, strict=True)))])
        for window in windows
    ]
    return torch.cat(fragments), windows


def fragments_to_dense(
    out: Tensor, offsets: Sequence[tuple[int, ...]], stride: tuple[int, ...], batch: int
) -> Tensor:
    """Interleave fragment outputs ``(n_frag * bs, C, *n)`` into ``(bs, C, *(n * stride))``.

    Fragment ``i`` of example ``b`` sits at batch index ``i * bs + b`` and stands for the
    input shift ``offsets[i]``; its outputs go to ``dense[b, :, a::s_x, c::s_y]``.
    """
    out = out.reshape(len(offsets), batch, *out.shape[1:])
    spatial = out.shape[3:]
    dense = out.new_empty(
        batch, out.shape[2], *(n * s for n, s in zip(spatial, stride, strict=True))
    )
    for fragment, offset in zip(out, offsets, strict=True):
        dense[(..., *(slice(o, None, s) for o, s in zip(offset, stride, strict=True)))] = fragment
    return dense


def mfp_forward(model: Any, x: Tensor) -> Tensor:
    """Dense logits of ``x`` in one pass, with MFP in every pooling layer.

    Parameters
    ----------
    model
        An img-img :class:`~elektronn.net.model.ElektronnNet`.
    x
        ``(bs, ch, *spatial)`` with an MFP-valid spatial size (``fov - 1 + k * stride``
        per axis).

    Returns
    -------
    Tensor
        ``(bs, n_lab, *(spatial - fov + 1))``; softmax of it gives the class probabilities.
    """
    _require_conv_output(model)
    n_dim = x.dim() - 2
    offsets: list[tuple[int, ...]] = [(0,) * n_dim]
    stride = (1,) * n_dim
    h = x
    shapes = model.arch.layer_shapes_for(x.shape[2:], mfp=True)
    for block, sizes in zip(model.conv_blocks, shapes, strict=True):
        if math.prod(block.pool) == 1:
            h = block(h)
            continue
        lengths = [pooled * p for (_, pooled), p in zip(sizes, block.pool, strict=True)]
        h, windows = _fragment_pool(block, block.convolve(h), lengths)
        offsets = [
            tuple(a + o * s for a, o, s in zip(old, window, stride, strict=True))
            for window in windows
            for old in offsets
        ]
        stride = tuple(s * p for s, p in zip(stride, block.pool, strict=True))
    return fragments_to_dense(model.head(h), offsets, stride, x.shape[0])


def shift_and_stitch(model: Any, x: Tensor) -> Tensor:
    """Dense logits from ``S^d`` ordinary forward passes on shifted crops (the reference).

    For each shift ``a`` in ``[0, S)^d`` the largest input starting at ``a`` that the net
    takes without MFP is cut out; its outputs land at ``dense[..., a::S]``. Works for any
    input at least as large as the field of view; MFP must give the same result.
    """
    _require_conv_output(model)
    fov, stride = model.arch.fov, model.arch.stride
    size = x.shape[2:]
    out_size = [n - f + 1 for n, f in zip(size, fov, strict=True)]
    if min(out_size) < 1:
        raise ValueError(f"Input {tuple(size)} is smaller than the field of view {fov} of the net.")
    dense = None
    for shift in itertools.product(
        *(range(min(s, n)) for s, n in zip(stride, out_size, strict=True))
    ):
        n_out = [(n - a - f) // s + 1 for n, a, f, s in zip(size, shift, fov, stride, strict=True)]
        crop = tuple(
            slice(a, a + f + (k - 1) * s)
            for a, f, k, s in zip(shift, fov, n_out, stride, strict=True)
        )
        out = model.strided_forward(x[(..., *crop)])
        if dense is None:
            dense = out.new_empty(x.shape[0], out.shape[1], *out_size)
        dense[(..., *(slice(a, None, s) for a, s in zip(shift, stride, strict=True)))] = out
    return dense
