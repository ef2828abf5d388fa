"""Demo: 2D membrane segmentation on synthetic EM-like data generated on first use.

Run it with ``elektronn-train demo``. It trains a small img-img CNN for two minutes
(``max_runtime``) on the CPU, its first step about 3 s after the command starts (the data take
well under a second to generate, once), and writes everything to ~/CNN_Training/demo/.
"""

import elektronn.data.synthetic as _synthetic

save_path = "~/CNN_Training/"
save_name = "demo"
overwrite = True
plot_on = True
param_save_h = 1.0

# Network: 2D, valid convolutions, one pooling (output stride 2), field of view 17
n_dim = 2
desired_input = 64
filters = [6, 4, 3]
pool = [2, 1, 1]
nof_filters = [16, 24, 24]
activation_func = "relu"
batch_size = 4
n_lab = 2

# Data: cube 0 trains, cube 1 validates; z-slices are the 2D training images
data_path = label_path = _synthetic.ensure_demo_data()
d_files = [("raw_0.h5", "raw"), ("raw_1.h5", "raw")]
l_files = [("membranes_0.h5", "labels"), ("membranes_1.h5", "labels")]
valid_cubes = [1]
mode = "img-img"
anisotropic_data = True
flip_data = True
grey_augment_channels = [0]
warp_on = 0.5
background_processes = False

# Optimisation
n_steps = 3000
max_runtime = 120
history_freq = [250]
monitor_batch_size = 8
SGD_params = dict(LR=0.02, momentum=0.9)
LR_decay = 0.99
