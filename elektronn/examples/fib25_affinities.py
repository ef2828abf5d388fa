"""FIB-25 neurons in 3D: a U-Net trained on affinities of the neuron IDs.

FIB-SEM of the Drosophila medulla, 10 nm isotropic, 250^3 voxels with a neuron ID per voxel
(data from $FIB25_DIR, else ../shared/data/fib25/ beside a source checkout; see its README for
the source and terms). Protocol: train on z = 0..174, validate on z = 175..249.

The net learns, for each voxel v and offset d, whether v and v + d lie in the same neuron
(``target = 'affinity'``): the nearest neighbours along x, y and z plus long-range offsets of 3
and 9 voxels, which carry the context that lets ``elektronn-segment --method mws`` split
neurons where a nearest-neighbour boundary is faint. The IDs (uint32) are renumbered per cube
at load; 0 is unlabelled. Affinities are computed from the augmented ID patch, so flips,
warps and elastic deformation keep them exact. Set ``lsd_sigma = 5.0`` to add the 10 local
shape descriptor channels as an auxiliary target (Sheridan et al. 2022).

Sized for a 2-core CPU: a 3-level U-Net of valid 3x3x3 convolutions, input 68^3 -> output
28^3 (field of view 41), one patch per step, batches made in the training process. Labels
within the net's offset (20 voxels) of the x-y border cannot be trained (the start-up line says
how many); along z each image reaches 20 slices beyond its labels, so the protocol's split
holds for the labels (training z 20..174, validation z 175..229; the images overlap, the labels
do not).
"""

import os as _os

_here = _os.path.dirname(__file__)
_data = _os.environ.get("FIB25_DIR", _os.path.join(_here, "../../../shared/data/fib25/"))

save_path = "~/CNN_Training/3D/"
save_name = "fib25_affinities"

architecture = "unet"
n_dim = 3
desired_input = [68, 68, 68]
filters = [3, 3, 3]
pool = [2, 2, 1]
nof_filters = [12, 24, 48]
unet_batch_norm = True
activation_func = "relu"
batch_size = 1

target = "affinity"
affinity_offsets = [
    (-1, 0, 0), (0, -1, 0), (0, 0, -1),
    (-3, 0, 0), (0, -3, 0), (0, 0, -3),
    (-9, 0, 0), (0, -9, 0), (0, 0, -9),
]  # fmt: skip
unlabelled_id = 0
lsd_sigma = None
n_lab = None  # follows from the offsets (9)

mode = "img-img"
data_path = label_path = _data
# each image reaches the net's z offset (20) beyond its labels, so those labels can be trained:
# training labels z 20..174 (image 0..194), validation labels z 175..229 (image 155..249)
d_files = [("raw.h5", "raw", (0, 195)), ("raw.h5", "raw", (155, 250))]
l_files = [("neuron_ids.h5", "ids", (20, 175)), ("neuron_ids.h5", "ids", (175, 230))]
valid_cubes = [1]
anisotropic_data = False  # isotropic voxels: z may be swapped with x and y
flip_data = True
grey_augment_channels = [0]
warp_on = 0.5
elastic_deform = True
elastic_spacing = [24, 24, 24]
elastic_strength = 2.0
background_processes = 0
preview_data_path = None

n_steps = 10**6
max_runtime = 30 * 60
history_freq = [100]
monitor_batch_size = 4
optimizer = "Adam"
SGD_params = dict(LR=0.01, momentum=0.9)  # used if optimizer is switched to SGD
Adam_params = dict(LR=0.0005, beta1=0.9, beta2=0.999, epsilon=1e-8)
LR_decay = 0.95
