"""MNIST as vectors with a multi-layer perceptron (vect-scalar), as the original example."""

import os as _os

_shared = _os.path.join(_os.path.dirname(__file__), "../../../shared/data/mnist/mnist.pkl.gz")

save_path = "~/CNN_Training/2D/"
save_name = "MNIST_MLP"

mode = "vect-scalar"
data_class_name = "MNISTData"
data_load_kwargs = dict(
    path=_shared if _os.path.exists(_shared) else None,
    convert2image=False,
    shift_augment=True,
)
n_lab = 10
background_processes = 2

MLP_layers = [300, 300]
activation_func = "relu"
batch_size = 50

n_steps = 100000
max_runtime = 30 * 60
history_freq = [500]
monitor_batch_size = 2000
SGD_params = dict(LR=0.02, momentum=0.9)
LR_decay = 0.99
