"""An affinity net's prediction: only the affinities are written, with the offsets of the
predicted volume, so ``elektronn-segment --method mws`` takes it as it is."""

import h5py
import makers
import numpy as np
import pytest
import zarr

from elektronn.net.paramfile import save_params
from elektronn.predict.cli import main as predict
from elektronn.segment.cli import main as segment

pytestmark = pytest.mark.usefixtures("one_thread")

OFFSETS = [[-1, 0], [0, -1], [-3, 0]]


def affinity_run(folder):
    """A 2D affinity net with shape descriptors (3 offsets + 6 descriptor outputs)."""
    net = makers.tiny_net(((3, 3), (3, 3)), ((1, 1), (1, 1)), (4, 9), n_lab=9).eval()
    save_dir = folder / "aff"
    save_dir.mkdir()
    config = {"save_name": "aff", "target": "affinity", "affinity_offsets": OFFSETS,
              "lsd_sigma": 3.0}  # fmt: skip
    save_params(save_dir / "aff_end.param", net, config)
    return save_dir


@pytest.mark.parametrize("output", ["p.h5", "p.zarr"])
def test_only_the_affinities_are_written_with_the_stacks_offsets(tmp_path, output):
    raw = np.random.default_rng(0).integers(0, 256, (30, 26, 4), dtype=np.uint8)
    with h5py.File(tmp_path / "raw.h5", "w") as f:
        f["raw"] = raw
    out = tmp_path / output
    assert predict([str(affinity_run(tmp_path)), f"{tmp_path / 'raw.h5'}:raw", str(out),
                    "--gpu=false"]) == 0  # fmt: skip
    volume_offsets = [[-1, 0, 0], [0, -1, 0], [-3, 0, 0]]  # z = 0: slice by slice
    if output.endswith(".h5"):
        with h5py.File(out) as f:
            assert f["prob"].shape[0] == 3
            assert f["prob"].attrs["affinity_offsets"].tolist() == volume_offsets
            assert list(f["prob"].attrs["channel_names"])[2] == "affinity -3,+0,+0"
        return
    root = zarr.open_group(str(out))
    assert root["0"].shape == (3, 4, 26, 30)
    assert root.attrs["elektronn"]["affinity_offsets"] == volume_offsets
    assert segment([str(out), str(out), "--method", "mws"]) == 0
    labels = zarr.open_group(str(out))["labels"]
    assert len(list(labels.keys())) == 1
