"""``elektronn-train --new-config FILE``: a short starting config to fill in and train from.

It holds exactly what a user must decide (mode, data, network, steps), commented, as in the
user guide's §6; every other option keeps its default (``python -m elektronn.config.reference``
lists them all). ``examples/config_template.py`` is something else: the template of the
personal defaults file ``~/.elektronn.config``.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError

STARTING_CONFIG = '''\
"""My first membrane training (2D, img-img): fill in your data, then

    elektronn-train {name} --dry-run     # architecture, data shapes, RAM; writes nothing
    elektronn-train {name}

Every option not set here keeps its default: python -m elektronn.config.reference lists them.
"""
save_path = "~/CNN_Training/2D/"  # runs are saved in save_path/save_name/
save_name = "my_membranes"

# What is learnt: img-img = a label per pixel (img-scalar: one per image)
mode = "img-img"
n_lab = 2  # classes in the labels (0 = background, 1 = membrane)

# Data: h5 files as (file, dataset) or (file, dataset, (z0, z1)), axes (x, y, z);
# the label files in the same order as the image files
data_path = "data/"  # relative to this file's folder
label_path = "data/"
d_files = [("train-volume.h5", "raw", (0, 25)), ("train-volume.h5", "raw", (25, 30))]
l_files = [("train-labels.h5", "labels", (0, 25)), ("train-labels.h5", "labels", (25, 30))]
valid_cubes = [1]  # indices into d_files kept for validation
warp_on = 0.5  # elastic/affine warps on half of the patches
background_processes = 1  # batches made in a worker process

# Network: 4 conv layers, 2 poolings -> FOV 41, output stride 4
n_dim = 2
desired_input = 150  # patch size; changed to the nearest size the net allows
filters = [6, 5, 4, 4]
pool = [2, 2, 1, 1]
nof_filters = [20, 32, 48, 48]
batch_size = 1

# Steps: training ends at n_steps or after max_runtime seconds, whichever comes first
n_steps = 10**6
max_runtime = 60 * 60
history_freq = [500]  # monitor, print a status line and save -LAST every 500 steps
monitor_batch_size = 20
SGD_params = dict(LR=0.01, momentum=0.9)
'''


def write_new_config(path: str | Path) -> Path:
    """Write the starting config to ``path``, refusing to replace an existing file."""
    path = Path(path).expanduser()
    if path.exists():
        raise ConfigError(
            f"'{path}' exists: --new-config writes only new files; "
            f"choose another name or remove it first."
        )
    try:
        path.write_text(STARTING_CONFIG.format(name=path.name))
    except OSError as exc:
        raise ConfigError(f"Cannot write the new config '{path}': {exc.strerror or exc}.") from None
    return path
