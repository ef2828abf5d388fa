"""Draw the two ID-label conventions of user guide §5 from the ISBI 2012 membrane labels.

``label-ids-touching.png``: objects whose IDs touch (the membrane pixels given to the nearest
object), converted with the default; ``label-ids-gap.png``: objects separated by ID 0 (the
export of ``ndimage.label(membrane == 0)``), converted with ``--gap-id 0``. Each shows the IDs
and the boundary map. Run: ``python docs/images/label_conventions.py [ISBI_FOLDER]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import matplotlib
import numpy as np
from scipy import ndimage

from elektronn.labels import boundary_map

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[2] / "shared" / "data" / "isbi2012"


def id_colours(ids: np.ndarray) -> np.ndarray:
    """RGB image with a random colour per ID and black for ID 0."""
    palette = np.random.default_rng(3).uniform(0.25, 1.0, (int(ids.max()) + 1, 3))
    palette[0] = 0
    return palette[ids]


def draw(path: Path, ids: np.ndarray, labels: np.ndarray, title: str, option: str) -> None:
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4.3))
    left.imshow(id_colours(ids))
    left.set_title(title)
    right.imshow(labels, cmap="gray_r", vmin=0, vmax=1)
    right.set_title(f"{option}: boundary (black) {100 * labels.mean():.1f} %")
    for ax in (left, right):
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    matplotlib.use("Agg")
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    with h5py.File(folder / "train-labels.h5", "r") as f:
        membrane = f["labels"][:192, :192, 0] == 1
    gap_ids, _ = ndimage.label(~membrane)
    nearest = ndimage.distance_transform_edt(gap_ids == 0, return_indices=True)[1]
    touching = gap_ids[tuple(nearest)]
    draw(
        HERE / "label-ids-touching.png",
        touching,
        boundary_map(touching[:, :, None])[:, :, 0],
        "IDs that touch",
        "(default)",
    )
    draw(HERE / "label-ids-gap.png", gap_ids,
         boundary_map(gap_ids[:, :, None], gap_id=0)[:, :, 0], "IDs with 0 gaps (membranes)",
         "--gap-id 0")  # fmt: skip
    print(f"membrane share of the crop: {100 * membrane.mean():.1f} %; default on the gap "
          f"IDs: {100 * boundary_map(gap_ids[:, :, None]).mean():.1f} %")  # fmt: skip


if __name__ == "__main__":
    main()
