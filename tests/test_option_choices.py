"""The lower layers' tables of allowed values agree with the options table (issue 24, item 4).

``config/options.py`` declares every option's allowed values once (``choices``). Modules that
turn a value into behaviour keep a table keyed by those values (activation functions, autocast
dtypes, padding border modes); where they cannot import the choices (``arch/`` sits below
``config/``), these tests tie them to it, so a value added to one side but not the other fails
here instead of deep inside a run.
"""

from __future__ import annotations

from elektronn import device
from elektronn.arch.common import PAD_BORDER_MODES
from elektronn.config.options import OPTIONS_BY_NAME
from elektronn.data.registration import PAD_MODES
from elektronn.net import layers


def choices(name: str) -> set:
    return set(OPTIONS_BY_NAME[name].choices)


def test_every_precision_has_an_autocast_dtype():
    assert set(device.AUTOCAST_DTYPES) == choices("precision")


def test_every_activation_has_a_function():
    assert set(layers.ACTIVATIONS) == choices("activation_func")


def test_the_padding_border_modes_are_the_same_in_arch_and_data():
    assert set(PAD_BORDER_MODES) == set(PAD_MODES) < choices("border_mode")
