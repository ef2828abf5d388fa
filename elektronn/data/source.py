"""The data-source contract: everything training, the console, workers and previews use.

A data source makes batches and says what they look like. :class:`ImageData` (h5/zarr
volumes) and :class:`~.plugins.Data` (in-memory arrays, the base of ``MNISTData``) derive
from :class:`DataSource`; a user's plug-in class that does not is wrapped in
:class:`~.plugins.PluginSource`, which supplies the defaults below for whatever it lacks.
So ``train/`` calls these members directly and never probes the data object.

Required of every source: ``getbatch``, ``n_lab`` and ``example_shape``. Everything else
has a default here.
"""

from __future__ import annotations

import copy
import inspect
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import DataError

WARP_COUNTERS = ("n_successful_warp", "n_failed_warp")
"""Attributes each worker counts for itself: summed for the console, never sent to workers."""


def is_plain(value: Any) -> bool:
    """Whether a value is a small plain setting (numbers, strings and containers of them)."""
    if value is None or isinstance(value, (str, numbers.Number)):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(is_plain(k) and is_plain(v) for k, v in value.items())
    return False


class DataSource:
    """Base class of data sources, with the contract's defaults.

    Attributes
    ----------
    n_lab
        Number of classes (outputs for regression).
    example_shape
        Shape of one example in a data batch: ``(ch, *patch)`` or ``(n_features,)``.
    n_ch
        Image channels (1 by default and for vectors).
    n_successful_warp, n_failed_warp
        Warps done and warps that did not fit (0 for sources that do not warp).
    rng
        The source's ``numpy.random.Generator``, saved for an exact resume (None: not saved).
    """

    n_lab: int
    example_shape: tuple[int, ...]
    n_ch: int = 1
    n_successful_warp: int = 0
    n_failed_warp: int = 0
    rng: np.random.Generator | None = None

    def getbatch(self, batch_size: int, source: str = "train", **kwargs: Any) -> tuple:
        """``(data, labels, ...)`` of ``batch_size`` examples from ``source``."""
        raise NotImplementedError

    def has_source(self, source: str) -> bool:
        """Whether batches from ``source`` ('train', 'valid', 'test') exist."""
        return source == "train"

    def reseed(self, seed: int | np.random.SeedSequence | None) -> None:
        """Start a new random stream (each background worker calls it with its own seed)."""
        self.rng = np.random.default_rng(seed)

    def iter_split(self, source: str, batch_size: int) -> Iterator[tuple]:
        """Every example of ``source`` once, in batches (for whole-split test errors).

        Raises
        ------
        DataError
            For sources that only draw random batches (image volumes).
        """
        raise DataError(
            f"{type(self).__name__} draws random patches and cannot walk a whole split: "
            f"iter_split(source, batch_size) is for data classes with a fixed set of examples."
        )

    def input_standardisation(self) -> tuple[float, float] | None:
        """``(mean, std)`` that inputs were standardised with (None: not standardised)."""
        return None

    def training_labels(self) -> Iterator[np.ndarray] | None:
        """The training labels, in arrays of any shape, for the class shares printed at start.

        None (the default) where the source cannot list them; the label check is skipped then.
        """
        return None

    def accepts(self, argument: str) -> bool:
        """Whether ``getbatch`` takes the keyword ``argument`` (e.g. ``warp_on``, ``strided``)."""
        return argument in inspect.signature(self.getbatch).parameters

    def batch_settings(self) -> dict[str, Any]:
        """Copies of the public plain attributes that shape batches (what the console may set).

        Arrays, random generators and the per-worker warp counters are left out.
        """
        return {
            name: copy.deepcopy(value)
            for name, value in vars(self).items()
            if not name.startswith("_") and name not in WARP_COUNTERS and is_plain(value)
        }

    def apply_settings(self, settings: dict[str, Any]) -> None:
        """Set attributes from :meth:`batch_settings` (workers, and undoing a change)."""
        for name, value in settings.items():
            setattr(self, name, value)
