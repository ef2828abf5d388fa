"""3D anisotropic U-Net on the ISBI 2012 stack, with elastic deformation.

Flat 1x3x3 filters on the first level (the 50 nm sections are ~10x thicker than a pixel),
3x3x3 below it, and pooling only in x and y (pool (2,2,1) in (x,y,z) order): input
(x,y,z) = (108,108,14) -> output (68,68,2), 175,130 parameters. The elastic control grid is
coarse in z (spacing 24 px in x, y; 4 sections in z). Labels z = 6..15 train and
z = 18..23 validate; each image reaches 6 sections (the net's z offset) beyond its labels
(images z = 0..21 and 12..29), so every label can be trained; data as in ``neuro_3d``.

Batches are made in the training process (``background_processes = 0``), as in
``isbi2012_unet``: on 2 cores two workers left torch one thread (measured: 2.7 it/s against
1.6 with two workers, waiting for data 0.7 % of the time). With many cores or a GPU, set
``background_processes = 2`` to take the patches off the training thread.
"""

import os as _os

_here = _os.path.dirname(__file__)
_data = _os.environ.get("ISBI2012_DIR", _os.path.join(_here, "../../../shared/data/isbi2012/"))

save_path = "~/CNN_Training/3D/"
save_name = "neuro_3d_unet"

architecture = "unet"
n_dim = 3
desired_input = [108, 108, 14]
filters = [[3, 3, 1], [3, 3, 3], [3, 3, 3]]
pool = [[2, 2, 1], [2, 2, 1], 1]
nof_filters = [12, 24, 48]
unet_batch_norm = True
activation_func = "relu"
batch_size = 1
n_lab = 2

mode = "img-img"
data_path = label_path = _data
d_files = [("train-volume.h5", "raw", (0, 22)), ("train-volume.h5", "raw", (12, 30))]
l_files = [("train-labels.h5", "labels", (6, 16)), ("train-labels.h5", "labels", (18, 24))]
valid_cubes = [1]
anisotropic_data = True
flip_data = True
grey_augment_channels = [0]
warp_on = 0.7
elastic_deform = True
elastic_spacing = [24, 24, 4]
elastic_strength = 3.0
background_processes = 0
preview_data_path = _os.path.join(_data, "test-volume.h5")
preview_kwargs = dict(export_class=1, max_z_pred=2)
initial_prev_h = 0.1
prev_save_h = 0.2

n_steps = 10**6
max_runtime = 2 * 3600
history_freq = [200]
monitor_batch_size = 10
optimizer = "Adam"
SGD_params = dict(LR=0.01, momentum=0.9)  # used if optimizer is switched to SGD
Adam_params = dict(LR=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8)
LR_decay = 0.995
