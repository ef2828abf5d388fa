"""MNIST whole-image classification with a small CNN (img-scalar), as the original example.

Reads mnist.pkl.gz from ../shared/data/mnist/ beside a source checkout, else from
~/.elektronn/mnist.pkl.gz. Train with warping until the validation error plateaus, then
in the Ctrl+C console: ``data.warp_on = False`` and ``setlr 0.002``; ``self.testModel('test')``
gives the test error.
"""

import os as _os

_shared = _os.path.join(_os.path.dirname(__file__), "../../../shared/data/mnist/mnist.pkl.gz")

save_path = "~/CNN_Training/2D/"
save_name = "MNIST_CNN_warp"

mode = "img-scalar"
data_class_name = "MNISTData"
data_load_kwargs = dict(
    path=_shared if _os.path.exists(_shared) else None,
    convert2image=True,
    warp_on=True,
    shift_augment=True,
)
n_lab = 10
background_processes = 2

n_dim = 2
desired_input = 26
filters = [3, 3]
pool = [2, 2]
nof_filters = [16, 32]
MLP_layers = [300, 300]
activation_func = "relu"
batch_size = 50
dropout_rates = []

n_steps = 100000
max_runtime = 30 * 60
history_freq = [500]
monitor_batch_size = 2000
SGD_params = dict(LR=0.02, momentum=0.9)
LR_decay = 0.99
