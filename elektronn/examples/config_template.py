"""elektronn user defaults: copy to ~/.elektronn.config and edit.

Every option is listed at its master default. Values set here override the master
defaults for all your trainings; a training config overrides both. (*) marks options
to set in every training config, ($) options needed only in special cases.
Generated from elektronn/config/options.py - do not edit by hand.
"""

# --- General Setup ---
# Folder in which the save directory <save_path>/<save_name>/ is created.
save_path = '~/CNN_Training/'
# ($) Make plots of the training progress in the save directory (in a separate process).
plot_on = True
# ($) Print a status line (loss, errors, LR, speed) every history_freq steps.
print_status = True
# ($) Log the status-line values and previews also here, each where its package is installed: tensorboard/ and mlruns/ (with the config) in the save dir; [] = none. Any of: 'tensorboard', 'mlflow'.
loggers = ['tensorboard', 'mlflow']
# Default device if --gpu is not given: False = CPU, an int = that CUDA device, 'auto'.
device = False
# ($) Arithmetic of the training forward passes: bf16 is autocast, fast on GPUs. One of: 'fp32', 'bf16'.
precision = 'fp32'
# ($) Store conv weights and batches channels-last (NHWC/NDHWC), faster with cuDNN on GPUs.
channels_last = False
# ($) torch.compile the training step: True or a torch.compile mode (slow first steps). One of: True, False, 'default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs'.
torch_compile = False
# ($) Seed of all random numbers (weights, patches, augmentation); None = a fresh one, printed.
random_seed = None
# Hours of training between persistent parameter snapshots.
param_save_h = 1.0
# Hours of training until the first preview prediction.
initial_prev_h = 1.0
# Hours of training between preview predictions.
prev_save_h = 3.0

# --- Paths and General ---
# (*) Name of the save directory and prefix of every file written there.
save_name = 'Test'
# If False, refuse to start when the save directory exists (nothing is touched).
overwrite = True
# ($) Parameter file to initialise the network from (shape changes are tolerated).
param_file = None

# --- Network Architecture ---
# Activation, global or one per layer (conv + MLP). One of: 'tanh', 'abs', 'linear', 'sig', 'relu'.
activation_func = 'relu'
# (*) Number of patches per update step.
batch_size = 1
# Fail rates per layer (conv + MLP) or global; [] disables; never on the last layer.
dropout_rates = []
# (*) Spatial dimensionality of the CNN: 2 or 3 (channels are not a dimension).
n_dim = 2
# (*) Desired input size, scalar or (x,y[,z]); the largest valid size <= it is used.
desired_input = 200
# (*) Filter size per conv layer: ints or (x,y[,z]) tuples for anisotropic filters.
filters = []
# (*) Max-pooling factor per conv layer: ints or (x,y[,z]) tuples.
pool = []
# (*) Number of filters (feature maps) per conv layer.
nof_filters = []
# ($) maxabs = max of absolute values, sign kept; global or per conv layer. One of: 'max', 'maxabs'.
pooling_mode = 'max'
# (*) Max fragment pooling per conv layer (a bool each): training then has dense outputs and unstrided labels (on in every pooling layer, or in none); [] = off. Prediction uses MFP whatever it is.
MFP = []
# ($) cnn: conv layers + pooling; unet: valid U-Net (filters/pool/nof_filters per level, last pool 1). One of: 'cnn', 'unet'.
architecture = 'cnn'
# ($) U-Net: valid convolutions per level (encoder and decoder).
unet_n_convs = 2
# ($) U-Net up-sampling: transposed convolution, or nearest + 1x1 convolution. One of: 'transposed', 'nearest'.
unet_upsampling = 'transposed'
# ($) U-Net: batch norm after each conv (running statistics in eval: tiles stay exact).
unet_batch_norm = False

# --- Multi Layer Perceptron (MLP) and Others ---
# ($) dict(n_hid=..., activation_func='tanh') adds a recurrent layer before the MLP (vect-scalar only).
rnn_layer_kwargs = None
# (*) Neurons per fully connected layer after the conv layers; [] for img-img.
MLP_layers = []
# Loss function: nll (classification), regression (mean squared error) or affinity (labels are object IDs; sigmoid cross-entropy per offset). One of: 'nll', 'regression', 'affinity'.
target = 'nll'
# ($) target='affinity': one offset (x,y[,z]) per output channel, the pair (v, v + offset); long-range ones allowed; None = nearest neighbours (-1 along each axis).
affinity_offsets = None
# ($) target='affinity': the object ID of unlabelled voxels (negative IDs are too); pairs touching one are not trained.
unlabelled_id = 0
# ($) target='affinity': add the soft Dice loss of each affinity channel to the cross-entropy.
affinity_dice = False
# ($) target='affinity': also train local shape descriptors (10 in 3D, 6 in 2D; mean squared error) with this Gaussian window in voxels, scalar or (x,y[,z]); None = off.
lsd_sigma = None

# --- Data Options ---
# (*) Kind of data and labels. One of: 'img-img', 'img-scalar', 'vect-scalar'.
mode = 'img-img'
# (*) Prepare batches in background processes: True (= 2) or the number of processes.
background_processes = False
# ($) False keeps h5 volumes on disk and reads only each patch's region (data larger than RAM).
data_in_memory = True
# (*) Number of classes; None detects it from the labels (slow).
n_lab = None

# --- Data Options for Images (ignored for vect-scalar) ---
# (*) Folder of the image files (relative paths resolve against the config file's folder).
data_path = ''
# (*) Folder of the label files (relative paths resolve against the config file's folder).
label_path = ''
# (*) Image files: list of (file, dataset key), or (file, key, (z0, z1)) for z0 <= z < z1 of it (e.g. one volume split into training and validation cubes).
d_files = []
# (*) Label files: (file, key) or (file, key, (z0, z1)), in the same order as d_files.
l_files = []
# Relative sampling priority per cube (order of d_files); None = proportional to size.
cube_prios = None
# Indices of the cubes (order of d_files) used for validation only.
valid_cubes = []
# ($) Discard a patch whose fraction of unlabelled (negative) labels exceeds this.
example_ignore_threshold = 0.0
# (*) Channels with random grey-value augmentation; [] disables it.
grey_augment_channels = [0]
# ($) Weight examples by a previous prediction in the last input channel (boosting-like).
use_example_weights = False
# Randomly flip, rotate by 90 degrees and mirror the patches.
flip_data = True
# (*) 2D nets cut slices only across z; False uses all three orientations.
anisotropic_data = True
# ($) Training with lazy annotations (per-cube 'info' dataset in the label files).
lazy_labels = False
# (*) Random warping of training patches: True, or the fraction of patches to warp.
warp_on = False
# ($) Elastic deformation of training patches (composed with the warp): True or a fraction.
elastic_deform = False
# ($) Elastic control-grid spacing in voxels, scalar or (x,y[,z]); z-aware for anisotropy.
elastic_spacing = [32, 32, 4]
# ($) Elastic in-plane displacement (standard deviation per control point) in voxels, scalar or (x,y).
elastic_strength = 3.0
# (*) What img-scalar does with images of invalid size. One of: 'crop', 'keep', '0-pad', 'c-pad', 'mirror', 'reject'.
border_mode = 'crop'
# ($) 'standardise' gives the images zero mean and unit standard deviation. One of: None, 'standardise'.
pre_process = None
# Set True if the h5 data is stored as (z,(ch,)x,y) instead of ((ch,)x,y,z).
zchxy_order = False
# Only mirror horizontally (e.g. for handwriting or outdoor images).
upright_x = False
# Down-sample the training data in x and y by this factor (False = off).
downsample_xy = False

# --- Preview Predictions ---
# h5 file with raw cubes ((ch,)x,y,z), 0-255, to predict as previews; None = no previews.
preview_data_path = None
# Preview settings: export_class (int, list or 'all') and max_z_pred.
preview_kwargs = {'export_class': 1, 'max_z_pred': 5}

# --- Alternative / vect-scalar Data Options ---
# Data class shipped with elektronn (e.g. 'MNISTData') or (file_path, class_name).
data_class_name = None
# Keyword arguments to create the data class.
data_load_kwargs = {}
# Keyword arguments for the data class's getbatch (batch_size is added automatically).
data_batch_kwargs = {}

# --- Optimisation Options ---
# (*) Maximal number of update steps.
n_steps = 1000000000000
# (*) Maximal training time in seconds, including batch creation and monitoring.
max_runtime = 86400
# (*) Every this many steps: monitor errors, print status, save history, LAST and plots.
history_freq = [2000]
# Patches used to estimate training and validation performance.
monitor_batch_size = 10
# ($) L2 penalty on the weights; False = 0.
weight_decay = False
# Importance of each class (length n_lab), normalised internally; None = equal.
class_weights = None
# Label propagation for unlabelled pixels above this probability; <= 0.5 disables.
label_prop_thresh = None
# Optimiser (switchable in the Ctrl+C console). One of: 'SGD', 'CG', 'RPROP', 'LBFGS', 'Adam'.
optimizer = 'SGD'
# Learning-rate multiplier per 1000 update steps.
LR_decay = 0.993
# List of (step, LR): at that step the LR is set to that value (any order).
LR_schedule = None

# --- Optimiser Hyperparameters ---
# (*) Initial learning rate and momentum for SGD.
SGD_params = {'LR': 0.001, 'momentum': 0.9}
# ($) Learning rate and moment decays for Adam.
Adam_params = {'LR': 0.001, 'beta1': 0.9, 'beta2': 0.999, 'epsilon': 1e-08}
# ($) Step-size penalty and gain per sign change and the initial step size for RPROP.
RPROP_params = {'penalty': 0.35,
 'gain': 0.2,
 'beta': 0.7,
 'initial_update_size': 0.0001}
# ($) n_steps per batch (3-6), alpha <= 0.35 line-search criterion, beta precision (0.5-0.9), max_step/min_step.
CG_params = {'n_steps': 4,
 'alpha': 0.35,
 'beta': 0.75,
 'max_step': 0.02,
 'min_step': 8e-05}
# ($) Evaluations, iterations and history length of L-BFGS on each batch.
LBFGS_params = {'maxfun': 40,
 'maxiter': 4,
 'm': 10,
 'factr': 100.0,
 'pgtol': 1e-09,
 'iprint': -1}
