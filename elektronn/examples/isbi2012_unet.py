"""ISBI 2012 EM membranes with a valid-convolution U-Net and elastic deformation.

The same data and split as ``isbi2012_membranes`` (train z = 0..24, validate z = 25..29; data
from $ISBI2012_DIR, else ../shared/data/isbi2012/ beside a source checkout), but the network
of today's EM segmentation: a 4-level U-Net of valid 3x3 convolutions with batch norm
(input 188x188 -> output 100x100, field of view 89, 483,170 parameters), sized to train on a
2-core CPU, and elastic deformation composed with the random warp.

Batches are made in the training process (``background_processes = 0``): a U-Net step costs
~100x more than its warped patches, so a worker would idle while holding a core that torch's
second thread uses (measured on 2 cores: 10.9 it/s against 6.9 with one worker).
"""

import os as _os

_here = _os.path.dirname(__file__)
_data = _os.environ.get("ISBI2012_DIR", _os.path.join(_here, "../../../shared/data/isbi2012/"))

save_path = "~/CNN_Training/2D/"
save_name = "isbi2012_unet"

# Network: U-Net, one entry per level (the last level is the bottom: pool 1)
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
n_lab = 2

# Data
mode = "img-img"
data_path = label_path = _data
d_files = [("train-volume.h5", "raw", (0, 25)), ("train-volume.h5", "raw", (25, 30))]
l_files = [("train-labels.h5", "labels", (0, 25)), ("train-labels.h5", "labels", (25, 30))]
valid_cubes = [1]
anisotropic_data = True
flip_data = True
grey_augment_channels = [0]
warp_on = 0.5
elastic_deform = True
elastic_spacing = 24
elastic_strength = 3.0
background_processes = 0
preview_data_path = _os.path.join(_data, "test-volume.h5")
preview_kwargs = dict(export_class=1, max_z_pred=1)
initial_prev_h = 0.1
prev_save_h = 0.25

# Optimisation
n_steps = 10**6
max_runtime = 30 * 60
history_freq = [200]
monitor_batch_size = 20
optimizer = "Adam"
SGD_params = dict(LR=0.01, momentum=0.9)  # used if optimizer is switched to SGD
Adam_params = dict(LR=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8)
LR_decay = 0.9  # per 1000 steps: 1e-3 -> ~1.3e-4 after 30 min (~19,000 steps)
class_weights = None
