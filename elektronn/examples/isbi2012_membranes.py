"""ISBI 2012 EM membranes: 2D img-img membrane segmentation of serial-section TEM.

Trains on slices z = 0..24 of the training volume and validates on z = 25..29. The data is
read from $ISBI2012_DIR, else from ../shared/data/isbi2012/ beside a source checkout
(train-volume.h5 'raw', train-labels.h5 'labels': 1 = membrane). Previews are predicted from
the test volume. Expect a validation pixel error near 0.10 after ~30 min on a 2-core CPU.
"""

import os as _os

_here = _os.path.dirname(__file__)
_data = _os.environ.get("ISBI2012_DIR", _os.path.join(_here, "../../../shared/data/isbi2012/"))

save_path = "~/CNN_Training/2D/"
save_name = "isbi2012_membranes"

# Network: FOV 41, output stride 4
n_dim = 2
desired_input = 150
filters = [6, 5, 4, 4]
pool = [2, 2, 1, 1]
nof_filters = [20, 32, 48, 48]
activation_func = "relu"
batch_size = 1
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
background_processes = 1
preview_data_path = _os.path.join(_data, "test-volume.h5")
preview_kwargs = dict(export_class=1, max_z_pred=1)
initial_prev_h = 0.1
prev_save_h = 0.25

# Optimisation
n_steps = 10**6
max_runtime = 30 * 60
history_freq = [500]
monitor_batch_size = 20
SGD_params = dict(LR=0.01, momentum=0.9)
LR_decay = 0.995
class_weights = None
