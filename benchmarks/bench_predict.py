"""Dense prediction speed: exact tiling + MFP vs shift-and-stitch vs an overlap-blended window.

All three methods predict the same volume with the same net and produce the same output
frame (mirror-padded, so the output covers the input, as a MONAI user would get it):

* **MFP, exact tiling** (``predict_dense(method='mfp')``): adjacent output blocks, one
  forward pass per tile, each output voxel computed about once.
* **shift-and-stitch, exact tiling** (``method='stitch'``): the same tiles, S^d passes each.
* **sliding window, 25 % overlap, Gaussian blending** (MONAI's ``sliding_window_inference``
  recipe, implemented below): windows of the same input size whose outputs overlap by a
  quarter, each computed densely (MFP), accumulated with a Gaussian importance map
  (sigma = 1/8 of the window, MONAI's default) and normalised. With valid convolutions the
  overlapping windows agree exactly, so the blending only costs time.

A last row runs MFP under bfloat16 autocast (``--precision bf16``) at MFP's tuned tile.

``--unet`` instead compares the U-Net example (``isbi2012_unet.py``: valid 3x3 convolutions,
field of view 89) at ``predict_dense``'s default tile with MONAI's
``sliding_window_inference`` (MONAI's default constant blending, overlap 0.25) with windows of
260² and of 516² (the whole slice, which MONAI pads to the window), on the same net and
kernels: MONAI's predictor mirror-pads each window by the net's half field of view (44), the
way a valid-convolution net is run under MONAI, so its output has the window's size. Where
every window that covers a pixel saw the pixel's whole field of view on the net's stride
lattice, both must agree (asserted; see :func:`comparable`).

Redundancy is the number of input voxels pushed through the net per output voxel
(shift-and-stitch counts each of its S^d passes). Run::

    python benchmarks/bench_predict.py [--z 4] [--threads N] [--rounds 3] [--tile X,Y]
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import h5py
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from elektronn.config import load_config  # noqa: E402
from elektronn.net.mfp import mfp_forward  # noqa: E402
from elektronn.net.model import build_model  # noqa: E402
from elektronn.predict.dense import SLICE_AXIS, predict_dense  # noqa: E402
from elektronn.predict.geometry import net_geometry  # noqa: E402
from elektronn.predict.profile import Clock, fastest, profile_tiles  # noqa: E402
from elektronn.predict.tiling import plan_tiles  # noqa: E402

UNET_EXAMPLE = ROOT / "elektronn" / "examples" / "isbi2012_unet.py"
MONAI_WINDOWS = (260, 516)
ISBI_EXAMPLES = (
    ROOT / "elektronn" / "examples" / "isbi2012_membranes.py",
    ROOT / "examples" / "isbi2012_membranes.py",
)
OVERLAP = 0.25
ISBI_TEST = ROOT.parent / "shared" / "data" / "isbi2012" / "test-volume.h5"

#: The net of the reference's worked example 3 (2D img-img), used when the example is absent.
FALLBACK_NET = dict(n_dim=2, filters=[6, 5, 4, 4], pool=[2, 2, 1, 1], nof_filters=[16, 32, 32, 32],
                    desired_input=180)  # fmt: skip


def isbi_config(folder: Path):
    """The ISBI example's config (its architecture), or a config of :data:`FALLBACK_NET`."""
    for example in ISBI_EXAMPLES:
        if example.is_file():
            return load_config(example), f"{example.name} (the shipped ISBI example)"
    text = "\n".join(f"{k} = {v!r}" for k, v in FALLBACK_NET.items())
    path = folder / "isbi_net.py"
    path.write_text(text + '\nmode = "img-img"\nn_lab = 2\nactivation_func = "relu"\n')
    return load_config(path), "reference example 3 (filters [6,5,4,4], pools [2,2,1,1])"


def load_volume(n_z: int) -> tuple[np.ndarray, str]:
    """``(1, z, x, y)`` uint8: the ISBI test volume's first ``n_z`` slices, or random data."""
    if ISBI_TEST.is_file():
        with h5py.File(ISBI_TEST, "r") as f:
            raw = f["raw"][:, :, :n_z]
        name = f"ISBI 2012 test volume, first {n_z} slices {raw.shape}"
        return np.ascontiguousarray(raw.transpose(2, 0, 1))[None], name
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (1, n_z, 512, 512), dtype=np.uint8), f"random (512, 512, {n_z})"


def gaussian_map(shape: tuple[int, ...], sigma_scale: float = 0.125) -> np.ndarray:
    """MONAI's importance map: a Gaussian centred on the window, sigma = 1/8 of its size."""
    axes = []
    for n in shape:
        x = np.arange(n) - (n - 1) / 2
        axes.append(np.exp(-0.5 * (x / max(sigma_scale * n, 1e-6)) ** 2))
    weights = math.prod(np.ix_(*axes)).astype(np.float32)
    return np.maximum(weights / weights.max(), 1e-3)


def window_starts(n_out: int, window_out: int, overlap: float) -> list[int]:
    """Window starts with MONAI's step ``window * (1 - overlap)``, the last one flush."""
    if n_out <= window_out:
        return [0]
    step = max(1, int(window_out * (1 - overlap)))
    starts = list(range(0, n_out - window_out, step))
    return starts + [n_out - window_out]


def window_layout(
    model: torch.nn.Module, n_out: tuple[int, int], window_in: tuple[int, int], overlap: float
) -> tuple[tuple[int, int], list[list[int]]]:
    """Output size of a window (a size the net predicts densely) and its starts per axis."""
    axes = net_geometry(model).axes
    window_out = tuple(
        g.round_output(min(w - g.halo, n)) for w, g, n in zip(window_in, axes, n_out)
    )
    return window_out, [window_starts(n, w, overlap) for n, w in zip(n_out, window_out)]


def sliding_window(
    model: torch.nn.Module, raw: np.ndarray, window_in: tuple[int, int], overlap: float = OVERLAP
) -> np.ndarray:
    """Overlap-blended dense prediction of ``(ch, z, x, y)`` with a 2D net, output = input.

    Slice by slice, window by window: each window's dense output (MFP) is weighted by the
    Gaussian map, summed, and divided by the summed weights.
    """
    geometry = net_geometry(model)
    halo = [(g.left, g.right) for g in geometry.axes]
    padded = np.pad(raw.astype(np.float32) / 255, [(0, 0), (0, 0), *halo], mode="symmetric")
    window_out, starts = window_layout(model, raw.shape[2:], window_in, overlap)
    window_in = tuple(g.input_size(w) for g, w in zip(geometry.axes, window_out))
    weight = gaussian_map(window_out)
    acc = np.zeros((geometry.n_lab, *raw.shape[1:]), np.float32)
    norm = np.zeros(raw.shape[2:], np.float32)
    for sx, sy in itertools.product(*starts):
        norm[sx : sx + window_out[0], sy : sy + window_out[1]] += weight
    for z in range(raw.shape[1]):
        for sx, sy in itertools.product(*starts):
            window = padded[None, :, z, sx : sx + window_in[0], sy : sy + window_in[1]]
            with torch.inference_mode():
                logits = mfp_forward(model, torch.from_numpy(np.ascontiguousarray(window)))
            prob = torch.softmax(logits, 1)[0].numpy()
            acc[:, z, sx : sx + window_out[0], sy : sy + window_out[1]] += prob * weight
    return acc / norm


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


@dataclass
class Row:
    """One method at one tile size; ``seconds`` is the best of the rounds measured."""

    label: str
    tile: tuple[int, ...]
    redundancy: float
    run: Callable[[], np.ndarray]
    seconds: float = math.inf
    prob: np.ndarray | None = None


class Bench:
    """The three methods on one net and volume (``raw``: ``(1, z, x, y)`` uint8)."""

    def __init__(self, model: torch.nn.Module, raw: np.ndarray, clock: Clock) -> None:
        self.model, self.raw, self.clock = model, raw, clock
        self.geometry = net_geometry(model)
        self.axes = (SLICE_AXIS, *self.geometry.axes)
        self.out_voxels = math.prod(raw.shape[1:])

    def tune(self, method: str) -> tuple[int, ...]:
        """The fastest tile of ``elektronn-predict --profile`` (output capped by the slice)."""
        print(f"Tuning the tile for {method} (elektronn-predict --profile):")
        rows = profile_tiles(self.model, device=torch.device("cpu"), method=method,
                             max_out=self.raw.shape[2:], clock=self.clock)  # fmt: skip
        return fastest(rows).tile_in

    def exact(self, method: str, tile: tuple[int, ...], label: str, precision: str = "fp32") -> Row:
        """``predict_dense`` slice by slice (as the tuner measured), mirror-padded frame.

        Shift-and-stitch pushes S^d crops of ``tile - (S - 1)`` through the net per tile.
        """
        full_tile = (1, *tile)
        plan = plan_tiles(self.axes, self.raw.shape[1:], full_tile)
        redundancy = plan.redundancy
        if method == "stitch":
            redundancy *= math.prod(
                g.step * (n - g.step + 1) / n for g, n in zip(self.geometry.axes, plan.tile_in[1:])
            )
        return Row(label, plan.tile_in[1:], redundancy, lambda: predict_dense(
            self.model, self.raw, tile_shape=full_tile, pad_raw=True, method=method,
            precision=precision,
        ))  # fmt: skip

    def window(self, tile: tuple[int, ...], label: str) -> Row:
        window_out, starts = window_layout(self.model, self.raw.shape[2:], tile, OVERLAP)
        tile = tuple(g.input_size(w) for g, w in zip(self.geometry.axes, window_out))
        n_windows = math.prod(len(s) for s in starts) * self.raw.shape[1]
        redundancy = n_windows * math.prod(tile) / self.out_voxels
        return Row(label, tile, redundancy, lambda: sliding_window(self.model, self.raw, tile))

    def measure(self, rows: list[Row], rounds: int) -> None:
        """Best time per row over ``rounds`` rounds, methods interleaved within each round,
        so a burst of load on the shared machine hits all methods alike."""
        for _ in range(rounds):
            for row in rows:
                start = self.clock()
                row.prob = row.run()
                row.seconds = min(row.seconds, self.clock() - start)

    def speed(self, row: Row) -> float:
        return self.out_voxels / row.seconds / 1e6


def macs_per_output_voxel(model: torch.nn.Module, method: str) -> float:
    """Conv multiply-adds per output voxel, halos neglected: the cost floor of a method.

    MFP evaluates every layer once per dense position. Shift-and-stitch repeats layer ``k``
    for every shift that its pooling has not yet merged: (S / S_(k-1))^d times, ``S_(k-1)``
    being the stride before layer ``k``. Layers after the last pooling cost the same in both.
    """
    total, stride = 0.0, [1] * model.n_dim
    total_stride = model.arch.stride
    for block in [*model.conv_blocks, model.output_layer]:
        conv = block.conv
        macs = conv.in_channels * conv.out_channels * math.prod(conv.kernel_size)
        if method == "stitch":
            macs *= math.prod(s // p for s, p in zip(total_stride, stride))
        total += macs
        stride = [p * q for p, q in zip(stride, block.pool)]
    return total


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.unet:
        unet_vs_monai(args)
        return
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        config, net_name = isbi_config(Path(folder))
    model = build_model(config, 1, 2).eval()
    raw, volume_name = load_volume(args.z)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    bench = Bench(model, raw, clock)
    g = bench.geometry
    print(f"Net: {net_name}; FOV {g.fov}, stride {g.step}.")
    print(f"Volume: {volume_name}; output {raw.shape[1:]} (z, x, y), mirror-padded frame.")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {cpu_name()}; "
          f"clock: {clock.__name__} (CPU time of the process with one thread, so other jobs "
          f"on a shared machine do not count)")  # fmt: skip
    tuned_mfp = parse_tile(args.tile) or bench.tune("mfp")
    tuned_stitch = parse_tile(args.stitch_tile) or bench.tune("stitch")
    same = tuple(a.input_size(a.round_output(args.compare_out)) for a in g.axes)
    rows = [
        bench.exact("mfp", tuned_mfp, "MFP, exact tiling, tuned tile"),
        bench.exact("stitch", tuned_stitch, "shift-and-stitch, exact tiling, tuned tile"),
        bench.window(tuned_mfp, "sliding window 25 %, Gaussian, MFP's tile"),
        bench.exact("mfp", same, "MFP, exact tiling"),
        bench.exact("stitch", same, "shift-and-stitch, exact tiling"),
        bench.window(same, "sliding window 25 %, Gaussian"),
        bench.exact("mfp", tuned_mfp, "MFP bf16 (--precision bf16), tuned tile", "bf16"),
    ]
    bench.measure(rows, args.rounds)
    report(bench, rows)


def monai_predictor(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The net as a MONAI predictor: each window mirror-padded by the net's half field of view
    (so the valid convolutions give an output of the window's size), then softmax."""
    geometry = net_geometry(model)
    pad = [n for g in reversed(geometry.axes) for n in (g.left, g.right)]

    def predict(window: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(torch.nn.functional.pad(window, pad, mode="reflect")), 1)

    return predict


def comparable(model: torch.nn.Module, shape: tuple[int, int], roi: int) -> np.ndarray:
    """Pixels where MONAI's windows must give exactly our probabilities.

    A pooling net's output shifts with its input only by multiples of its stride S (8 for
    the U-Net), and our tiles start on multiples of S, so a pixel is comparable where every
    MONAI window covering it starts on a multiple of S (in the image, after MONAI's padding
    of a slice smaller than the window) and holds the pixel's whole field of view. Found with
    MONAI itself: a predictor that marks such pixels of its window, blended as the
    probabilities are, is exactly 1 there only. Pixels within the half field of view of the
    image border are left out: they see mirrored context, and numpy's and torch's mirrors
    differ.
    """
    from monai.inferers import sliding_window_inference

    axes = net_geometry(model).axes
    shift = [max(roi - n, 0) // 2 for n in shape]  # MONAI pads a small slice on both sides
    inner = torch.zeros((1, 1, roi, roi))
    inner[..., axes[0].left : roi - axes[0].right, axes[1].left : roi - axes[1].right] = 1.0

    def marks(window: torch.Tensor, where: list) -> torch.Tensor:
        aligned = [
            all((int(w.start) - s) % g.step == 0 for w, s, g in zip(box[2:], shift, axes))
            for box in where
        ]
        return inner * torch.tensor(aligned, dtype=torch.float32)[:, None, None, None]

    blended = sliding_window_inference(
        torch.zeros((1, 1, *shape)), (roi, roi), 1, marks, OVERLAP, with_coord=True
    )
    border = np.zeros(shape, bool)
    border[axes[0].left : shape[0] - axes[0].right, axes[1].left : shape[1] - axes[1].right] = True
    return (np.asarray(blended)[0, 0] >= 1.0 - 1e-6) & border


def unet_vs_monai(args: argparse.Namespace) -> None:
    """The U-Net example at ``predict_dense``'s default tile against MONAI's sliding windows."""
    try:
        from monai.inferers import sliding_window_inference
    except ImportError:
        raise SystemExit('--unet compares with MONAI: pip install -e ".[peers]"') from None

    torch.manual_seed(0)
    model = build_model(load_config(UNET_EXAMPLE), 1, 2).eval()
    raw, volume_name = load_volume(args.z)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    images = torch.from_numpy(raw[0][:, None].astype(np.float32) / 255)  # (z, 1, x, y)
    predictor = monai_predictor(model)

    def monai(roi: int) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            with torch.inference_mode():
                prob = sliding_window_inference(images, (roi, roi), 1, predictor, OVERLAP)
            return np.asarray(prob).transpose(1, 0, 2, 3)  # (class, z, x, y)

        return run

    whole = tuple(g.input_size(g.round_output(n + g.step - 1)) for g, n in zip(
        net_geometry(model).axes, raw.shape[2:]))  # fmt: skip
    runs = {
        "predict_dense, default tile": lambda: predict_dense(model, raw, pad_raw=True),
        f"predict_dense, one tile {whole[0]}² per slice": lambda: predict_dense(
            model, raw, pad_raw=True, tile_shape=(1, *whole)
        ),
    }
    windows = {f"MONAI sliding_window_inference, roi {r}²": r for r in MONAI_WINDOWS}
    runs.update({name: monai(roi) for name, roi in windows.items()})
    seconds, probs = dict.fromkeys(runs, math.inf), {}
    for _ in range(args.rounds):  # interleaved, best of the rounds
        for name, run in runs.items():
            start = clock()
            probs[name] = run()
            seconds[name] = min(seconds[name], clock() - start)
    print(f"U-Net: {UNET_EXAMPLE.name}, FOV {net_geometry(model).fov}; volume: {volume_name}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {cpu_name()}; "
          f"MONAI {version('monai')}; clock: {clock.__name__}")  # fmt: skip
    ours = "predict_dense, default tile"
    header = ("method", "s", "Mvox/s", "ours faster", "compared", "max|diff|")
    print("{:<44} {:>7} {:>8} {:>11} {:>9} {:>9}".format(*header))
    for name, secs in seconds.items():
        line = f"{name:<44} {secs:7.2f} {raw[0].size / secs / 1e6:8.3f}"
        if name in windows:
            mask = comparable(model, raw.shape[2:], windows[name])
            diff = float(np.abs(probs[name] - probs[ours])[:, :, mask].max(initial=0.0))
            assert diff < 1e-4, f"{name} differs from predict_dense by {diff} where comparable"
            line += f" {secs / seconds[ours]:10.2f}x {mask.mean():8.1%} {diff:9.1e}"
        print(line)
    print(
        "compared: share of the pixels where every MONAI window saw the whole field of view on "
        "our stride-8 lattice (see comparable()); goal: ours >= 1.5x faster than MONAI"
    )


def report(bench: Bench, rows: list[Row]) -> None:
    """The table, then the headline ratios against the targets."""
    print()
    print(f"{'method':<44} {'tile in':>9} {'s':>7} {'Mvox/s':>8} {'redund.':>8} {'max|diff|':>9}")
    for row in rows:
        diff = float(np.abs(row.prob - rows[0].prob).max())
        tile = "x".join(map(str, row.tile))
        print(
            f"{row.label:<44} {tile:>9} {row.seconds:7.2f} {bench.speed(row):8.3f} "
            f"{row.redundancy:8.3f} {diff:9.1e}"
        )
    mfp, stitch, window, mfp_same, stitch_same, window_same, mfp_bf16 = rows
    same = "x".join(map(str, mfp_same.tile))
    print()
    print("redund.: input voxels through the net per output voxel (stitch: all S^d passes).")
    print("max|diff|: largest difference to the first row's probabilities.")
    print(
        f"MFP vs shift-and-stitch, each at its tuned tile: {stitch.seconds / mfp.seconds:.2f}x "
        f"faster (target >= 3x); at the same tile {same}: "
        f"{stitch_same.seconds / mfp_same.seconds:.2f}x."
    )
    print(
        f"MFP vs sliding window (25 % overlap): {window.seconds / mfp.seconds:.2f}x at MFP's "
        f"tile, {window_same.seconds / mfp_same.seconds:.2f}x at the tile {same}."
    )
    print(f"Redundancy with the tuned tile: {mfp.redundancy:.3f} (target <= 1.5).")
    print(
        f"MFP in bf16 vs fp32 at the tuned tile: {mfp.seconds / mfp_bf16.seconds:.2f}x faster, "
        f"probabilities within {float(np.abs(mfp_bf16.prob - mfp.prob).max()):.1e}."
    )
    mfp_macs = macs_per_output_voxel(bench.model, "mfp")
    stitch_macs = macs_per_output_voxel(bench.model, "stitch")
    print(
        f"Conv multiply-adds per output voxel (no halo): MFP {mfp_macs / 1e3:.1f}k, "
        f"shift-and-stitch {stitch_macs / 1e3:.1f}k: MFP can be at most "
        f"{stitch_macs / mfp_macs:.2f}x faster by arithmetic on this net."
    )


def parse_tile(text: str | None) -> tuple[int, ...] | None:
    return tuple(int(v) for v in text.split(",")) if text else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--z", type=int, default=4, help="number of z slices to predict")
    p.add_argument("--tile", help="MFP tile input X,Y (default: run the tuner)")
    p.add_argument("--stitch-tile", help="shift-and-stitch tile input X,Y (default: tuner)")
    p.add_argument(
        "--compare-out",
        type=int,
        default=128,
        help="output edge of the small tile all methods share (default 128)",
    )
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (best counts)")
    p.add_argument("--unet", action="store_true", help="the U-Net example against MONAI")
    p.add_argument(
        "--threads", type=int, default=1,
        help="torch threads; 1 (default) is timed in CPU time, more in wall time",
    )  # fmt: skip
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    return args


if __name__ == "__main__":
    main()
