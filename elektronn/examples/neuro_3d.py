"""3D img-img membrane ("barrier") segmentation, in the spirit of the original neuro_3d_config.

The same anisotropic geometry as the original (reference §8.1): flat 2D filters in the first
layers, 3D filters later; input (x,y,z) = (127,127,7), output (25,25,3), stride (4,4,1),
95,717 parameters. Trained here on the ISBI 2012 stack, whose 50 nm sections are anisotropic
like the original data: labels z = 2..19 train and z = 22..27 validate; each image reaches
2 sections (the net's z offset) beyond its labels, so every label can be trained (images
z = 0..21 and 20..29; sections 20 and 21 are seen as context by both, never as labels).
"""

import os as _os

_here = _os.path.dirname(__file__)
_data = _os.environ.get("ISBI2012_DIR", _os.path.join(_here, "../../../shared/data/isbi2012/"))

save_path = "~/CNN_Training/3D/"
save_name = "neuro_3d"

n_dim = 3
desired_input = [127, 127, 7]
filters = [[4, 4, 1], [3, 3, 1], [3, 3, 3], [3, 3, 3], [2, 2, 1]]
pool = [[2, 2, 1], [2, 2, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]]
nof_filters = [10, 25, 40, 50, 60]
activation_func = "relu"
batch_size = 1
n_lab = 2

mode = "img-img"
data_path = label_path = _data
d_files = [("train-volume.h5", "raw", (0, 22)), ("train-volume.h5", "raw", (20, 30))]
l_files = [("train-labels.h5", "labels", (2, 20)), ("train-labels.h5", "labels", (22, 28))]
valid_cubes = [1]
anisotropic_data = True
flip_data = True
grey_augment_channels = [0]
warp_on = 0.7
background_processes = 2
preview_data_path = _os.path.join(_data, "test-volume.h5")
preview_kwargs = dict(export_class=1, max_z_pred=5)
initial_prev_h = 0.1
prev_save_h = 0.2

n_steps = 10**6
max_runtime = 2 * 3600
history_freq = [500]
monitor_batch_size = 10
weight_decay = 1e-4
SGD_params = dict(LR=0.005, momentum=0.9)
LR_decay = 0.993
