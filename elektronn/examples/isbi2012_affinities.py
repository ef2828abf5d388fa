"""ISBI 2012 cells as objects: the ISBI U-Net trained on 2D affinities.

The same data, split and network as ``isbi2012_unet`` (train z = 0..24, validate z = 25..29;
raw data from $ISBI2012_DIR, else ../shared/data/isbi2012/ beside a source checkout), but the
targets are affinities (``target = 'affinity'``): for each pixel and offset d, whether the
pixel and the one at d lie in the same cell. Membrane classes score well per pixel yet merge
cells through small gaps; affinities are what ``elektronn-segment --method mws`` segments.

ISBI ships a boundary map, not cell IDs. Make the IDs once -- the connected components of the
interior in each section, grown into the membrane so that neighbouring cells touch::

    elektronn-labels components ../shared/data/isbi2012/train-labels.h5:labels \\
        ~/.elektronn/isbi2012/train-ids.h5:ids

(the folder is $ISBI2012_IDS_DIR if set). Offsets: the nearest neighbours in x and y, and
long-range ones of 4 and 16 pixels. Sections are 50 nm thick, so the net stays 2D.
"""

import os as _os

_here = _os.path.dirname(__file__)
_data = _os.environ.get("ISBI2012_DIR", _os.path.join(_here, "../../../shared/data/isbi2012/"))
_ids = _os.path.expanduser(_os.environ.get("ISBI2012_IDS_DIR", "~/.elektronn/isbi2012/"))

save_path = "~/CNN_Training/2D/"
save_name = "isbi2012_affinities"

# Network: the U-Net of isbi2012_unet
architecture = "unet"
n_dim = 2
desired_input = 188
filters = [3, 3, 3, 3]
pool = [2, 2, 2, 1]
nof_filters = [16, 32, 64, 128]
unet_n_convs = 2
unet_batch_norm = True
activation_func = "relu"
batch_size = 2

# Targets: affinities of the cell IDs (one output per offset, (x, y) in pixels)
target = "affinity"
affinity_offsets = [(-1, 0), (0, -1), (-4, 0), (0, -4), (-16, 0), (0, -16)]
unlabelled_id = 0
lsd_sigma = None  # e.g. 6.0 adds the 6 local shape descriptor channels of 2D
n_lab = None  # follows from the offsets (6)

# Data
mode = "img-img"
data_path = _data
label_path = _ids
d_files = [("train-volume.h5", "raw", (0, 25)), ("train-volume.h5", "raw", (25, 30))]
l_files = [("train-ids.h5", "ids", (0, 25)), ("train-ids.h5", "ids", (25, 30))]
valid_cubes = [1]
anisotropic_data = True
flip_data = True
grey_augment_channels = [0]
warp_on = 0.5
elastic_deform = True
elastic_spacing = 24
elastic_strength = 3.0
background_processes = 0
preview_data_path = None

# Optimisation
n_steps = 10**6
max_runtime = 30 * 60
history_freq = [200]
monitor_batch_size = 20
optimizer = "Adam"
SGD_params = dict(LR=0.01, momentum=0.9)  # used if optimizer is switched to SGD
Adam_params = dict(LR=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8)
LR_decay = 0.9
