"""Draws napari-overlay.png of the user guide: raw EM data and its prediction in napari.

    xvfb-run -a python docs/images/napari_overlay.py SAVE_DIR RAW.h5:KEY [--slices 3]
    xvfb-run -a python docs/images/napari_overlay.py SAVE_DIR RAW.h5:KEY --slices 1 \
        --segment watershed --out docs/images/napari-labels.png

With ``--segment METHOD`` the prediction is also segmented into the raw image's OME-Zarr
labels (``elektronn-segment prob.zarr em.zarr``) and the labels are shown instead of it.

Runs the guide's §4.1 commands on the first slices of RAW (``elektronn-labels ome-zarr``,
``elektronn-predict ... prob.zarr``), opens both images with napari's OME-Zarr plugin as a user
would (``napari em.zarr prob.zarr``) and saves a screenshot: the membrane probability over
the raw data, at the same place, with a scale bar in the raw data's unit.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import h5py
import napari

HERE = Path(__file__).parent


def run(*command: str) -> None:
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("raw", help="FILE.h5:KEY, (x, y, z)")
    parser.add_argument("--slices", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "napari-overlay.png"))
    parser.add_argument("--segment", help="also segment with this elektronn-segment method")
    args = parser.parse_args()
    path, key = args.raw.rsplit(":", 1)
    with tempfile.TemporaryDirectory() as folder:
        crop = f"{folder}/raw.h5"
        with h5py.File(path, "r") as f, h5py.File(crop, "w") as g:
            g["raw"] = f[key][:, :, : args.slices]
        em, prob = f"{folder}/em.zarr", f"{folder}/prob.zarr"
        run("elektronn-labels", "ome-zarr", f"{crop}:raw", em, "--voxel-size", "4,4,50",
            "--unit", "nanometer")  # fmt: skip
        run("elektronn-predict", args.model, em, prob, "--gpu=false")
        if args.segment:
            run("elektronn-segment", prob, em, "--method", args.segment)
        viewer = napari.Viewer(show=True)
        for layer in viewer.open(em, plugin="napari-ome-zarr"):  # with --segment: its labels
            if isinstance(layer, napari.layers.Labels):  # the plugin opens them hidden
                layer.visible, layer.opacity = True, 0.45
        if not args.segment:
            for layer in viewer.open(prob, plugin="napari-ome-zarr"):
                layer.visible = layer.name.endswith("class 1")
                layer.colormap, layer.blending, layer.opacity = "magenta", "additive", 0.6
        viewer.dims.set_point(0, 50.0 * min(1, args.slices - 1))  # the second slice (nm)
        viewer.canvas.overlays.scale_bar.visible = True
        viewer.reset_view()
        viewer.screenshot(args.out, canvas_only=True, size=(700, 700))
        print(f"wrote {args.out}: layers {[layer.name for layer in viewer.layers]}")


if __name__ == "__main__":
    main()
