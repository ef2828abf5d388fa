"""The network: layers and model (``model``), losses, parameter files and Max Fragment Pooling.

Modules: :mod:`.layers` (activations, max/maxabs pooling, dropout, conv/perceptron/RNN
layers), :mod:`.model` (:func:`~.model.build_model`, :class:`~.model.ElektronnNet`),
:mod:`.unet` (the valid U-Net), :mod:`.losses`, :mod:`.paramfile`, :mod:`.mfp`.
"""
