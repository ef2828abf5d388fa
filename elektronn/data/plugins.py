"""Plug-in data classes: the ``data_class_name`` option and the user data class contract.

The trainer takes its batches from a *data class* instead of h5 files whenever
``mode='vect-scalar'`` or ``data_class_name`` is set (then in image modes too, e.g. MNIST in
``img-scalar``). ``data_class_name`` is either

* the name of a class shipped with elektronn (``'MNISTData'``, see :data:`SHIPPED_DATA_CLASSES`), or
* a pair ``(file_path, class_name)``: the class ``class_name`` defined in the Python file
  ``file_path`` (a relative path is taken relative to the training config's folder).

The class is instantiated once as ``DataClass(**data_load_kwargs)``.

The user data class contract
----------------------------
An instance must provide:

``getbatch(batch_size, source='train', **data_batch_kwargs) -> tuple``
    Returns a tuple whose first two entries are ``(data, labels)``:

    * ``data``: float32 ``(batch_size, *example_shape)``. Image modes expect
      ``(bs, ch, x, y)`` (2D) or ``(bs, ch, z, x, y)`` (3D) matching the net's input patch;
      vect-scalar expects ``(bs, n_features)``.
    * ``labels``: int16 ``(bs,)`` class indices (negative = ignore), or float32 for regression.

    Training batches are requested as ``getbatch(batch_size, **data_batch_kwargs)``; monitor
    batches as ``getbatch(monitor_batch_size, source='train'|'valid')`` without
    ``data_batch_kwargs``, so every keyword of yours needs a default. Shapes must not change
    from call to call when background processes are used. Validation batches should never be
    augmented: they estimate the error on unseen data.
``n_lab``
    The number of classes (outputs for regression).
``example_shape``
    The shape of one example, e.g. ``(1, 26, 26)`` or ``(676,)``; vect-scalar builds its first
    layer from it.
``n_ch``
    The number of image channels (image modes only).
Everything else is optional; a class that does not derive from
:class:`~.source.DataSource` (or :class:`Data`) is wrapped in :class:`PluginSource`, which
supplies the defaults of :class:`~.source.DataSource` for what it lacks:

``reseed(seed)`` (optional, recommended)
    Replace the instance's random generator by ``numpy.random.default_rng(seed)``. Each background
    worker calls it with its own seed so that workers serve *different* batches. Without it every
    worker would produce the same sequence (the original ELEKTRONN's behaviour) and each batch
    would be trained on ``background_processes`` times in a row.
``has_source(source)`` (optional) and ``valid_d``
    Whether ``'valid'``/``'test'`` batches exist; the trainer asks ``has_source('valid')``
    before monitoring validation batches, and without the method it monitors training batches
    only. The original looked for a non-empty ``valid_d`` instead; :class:`Data` has both.
``iter_split(source, batch_size)`` (optional)
    Iterate once over a whole split, used to evaluate e.g. the test set from the console.
``training_labels()`` (optional) or ``train_l``
    The training labels, for the class shares and the majority-class baseline printed at
    start; a numpy array ``train_l`` serves as well. Without either that check is skipped.

The simplest way to satisfy the contract is to subclass :class:`Data` and pass it the arrays::

    class MyData(Data):
        def __init__(self, path, seed=None):
            d = np.load(path)
            super().__init__(d["x_train"], d["y_train"], d["x_valid"], d["y_valid"], seed=seed)
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .errors import DataError
from .source import DataSource

SHIPPED_DATA_CLASSES: dict[str, str] = {"MNISTData": "elektronn.data.mnist"}
"""Data classes shipped with elektronn: class name → module (imported only when used)."""

SOURCES = ("train", "valid", "test")
REQUIRED_ATTRIBUTES = ("n_lab", "example_shape")


class PluginError(DataError):
    """A problem with a plug-in data class or its data, explained in one paragraph.

    A :class:`~elektronn.data.errors.DataError`, so ``elektronn-train`` reports it as bad input
    (one paragraph, exit code 2) instead of a traceback.
    """


# --------------------------------------------------------------------------- loading classes
def load_data_class(data_class_name: str | tuple[str, str] | list[str]) -> type:
    """The data class named by the ``data_class_name`` option.

    Parameters
    ----------
    data_class_name
        A name from :data:`SHIPPED_DATA_CLASSES` or ``(file_path, class_name)``.

    Raises
    ------
    PluginError
        If the file or class does not exist, the file cannot be imported, or the class has no
        ``getbatch`` method, so the user learns which file and class to fix before training.
    """
    if isinstance(data_class_name, str):
        cls = _shipped_class(data_class_name)
        where = f"shipped data class '{data_class_name}'"
    else:
        file_path, class_name = data_class_name
        cls = _class_from_file(Path(file_path).expanduser(), class_name)
        where = f"data class '{class_name}' in '{file_path}'"
    if not callable(getattr(cls, "getbatch", None)):
        raise PluginError(
            f"The {where} has no method getbatch(batch_size, source='train', **kwargs); "
            "a data class must provide it (see the contract in elektronn.data.plugins)."
        )
    return cls


def _shipped_class(name: str) -> type:
    if name not in SHIPPED_DATA_CLASSES:
        raise PluginError(
            f"Option 'data_class_name' is {name!r}, which is not a data class shipped with "
            f"elektronn ({', '.join(sorted(SHIPPED_DATA_CLASSES))}); for your own class give "
            "(file_path, class_name)."
        )
    return getattr(importlib.import_module(SHIPPED_DATA_CLASSES[name]), name)


def _class_from_file(path: Path, class_name: str) -> type:
    if not path.is_file():
        raise PluginError(
            f"The data class file '{path}' (option 'data_class_name') does not exist; "
            f"it should define the class '{class_name}'."
        )
    module = _import_file(path)
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise PluginError(
            f"The data class file '{path}' defines no class '{class_name}' "
            "(option 'data_class_name')."
        )
    return cls


def _import_file(path: Path) -> ModuleType:
    """Import a Python file by path, registered in ``sys.modules`` so its classes can be pickled.

    The module name includes a hash of the resolved path, so two user files with the same
    name do not replace each other.
    """
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    name = f"elektronn_user_data_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise PluginError(f"The data class file '{path}' cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code may raise anything; report it with the file
        del sys.modules[name]
        raise PluginError(
            f"Importing the data class file '{path}' failed: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def build_plugin_data(config: Any) -> Any:
    """Instantiate ``config.data_class_name`` with ``config.data_load_kwargs``.

    The keyword arguments are checked against the constructor's signature first, so a typo in
    ``data_load_kwargs`` is reported as such rather than as a ``TypeError`` deep in user code.
    Prints the original's one-line summary of the data set when the class offers one.
    """
    cls = load_data_class(config.data_class_name)
    kwargs = dict(config.data_load_kwargs)
    check_load_kwargs(cls, kwargs)
    data = cls(**kwargs)
    _check_contract(data, cls.__name__, config.mode)
    if callable(getattr(data, "summary", None)):
        print(data.summary())
    return data if isinstance(data, DataSource) else PluginSource(data)


def check_load_kwargs(cls: type, kwargs: dict[str, Any]) -> inspect.BoundArguments:
    """``data_load_kwargs`` bound to the constructor; a typo is a one-paragraph error."""
    try:
        return inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        raise PluginError(
            f"Option 'data_load_kwargs' {kwargs!r} does not fit the data class "
            f"{cls.__name__}{inspect.signature(cls)}: {exc}."
        ) from None


def _check_contract(data: Any, class_name: str, mode: str) -> None:
    required = REQUIRED_ATTRIBUTES + (() if mode == "vect-scalar" else ("n_ch",))
    missing = [name for name in required if not hasattr(data, name)]
    if missing:
        raise PluginError(
            f"The data class {class_name} lacks the attribute(s) {', '.join(missing)}, which "
            f"mode '{mode}' needs (see the contract in elektronn.data.plugins)."
        )


class PluginSource(DataSource):
    """A user's data class that does not derive from :class:`DataSource`, given its defaults.

    Reading and setting attributes goes to the user's object, so the console's
    ``data.warp_on = False`` reaches it; the contract's optional members use the object's own
    where it has them (``reseed``, ``has_source``, ``rng``, ``n_ch``, the warp counters).
    """

    def __init__(self, data: Any) -> None:
        object.__setattr__(self, "wrapped", data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.wrapped, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self.wrapped, name)

    @property
    def n_ch(self) -> int:  # type: ignore[override]
        return int(getattr(self.wrapped, "n_ch", 1))

    @property
    def n_successful_warp(self) -> int:  # type: ignore[override]
        return int(getattr(self.wrapped, "n_successful_warp", 0))

    @property
    def n_failed_warp(self) -> int:  # type: ignore[override]
        return int(getattr(self.wrapped, "n_failed_warp", 0))

    @property
    def rng(self) -> np.random.Generator | None:  # type: ignore[override]
        rng = getattr(self.wrapped, "rng", None)
        return rng if isinstance(rng, np.random.Generator) else None

    def getbatch(self, batch_size: int, source: str = "train", **kwargs: Any) -> tuple:
        return self.wrapped.getbatch(batch_size, source=source, **kwargs)

    def has_source(self, source: str) -> bool:
        """The class's own ``has_source``, else the original's rule: a non-empty ``<source>_d``."""
        own = getattr(self.wrapped, "has_source", None)
        if callable(own):
            return bool(own(source))
        return source == "train" or len(getattr(self.wrapped, f"{source}_d", None) or ()) > 0

    def reseed(self, seed: int | np.random.SeedSequence | None) -> None:
        """The class's own ``reseed``, else a new ``rng`` if it keeps a numpy Generator there."""
        own = getattr(self.wrapped, "reseed", None)
        if callable(own):
            own(seed)
        elif self.rng is not None:
            self.wrapped.rng = np.random.default_rng(seed)

    def accepts(self, argument: str) -> bool:
        return argument in inspect.signature(self.wrapped.getbatch).parameters

    def iter_split(self, source: str, batch_size: int) -> Iterator[tuple]:
        """The class's own ``iter_split``, else the contract's refusal."""
        own = getattr(self.wrapped, "iter_split", None)
        if callable(own):
            return own(source, batch_size)
        return DataSource.iter_split(self, source, batch_size)

    def batch_settings(self) -> dict[str, Any]:
        return DataSource.batch_settings(self.wrapped)

    def training_labels(self) -> Iterator[np.ndarray] | None:
        """The class's own ``training_labels``, else its ``train_l`` array (if it has one)."""
        own = getattr(self.wrapped, "training_labels", None)
        if callable(own):
            return own()
        labels = getattr(self.wrapped, "train_l", None)
        return iter([labels]) if isinstance(labels, np.ndarray) else None


# --------------------------------------------------------------------------- the base class
class _IndexStream:
    """An endless walk through ``0 … n-1``, one epoch after the other.

    With a generator every epoch is a fresh random permutation (training); without one the
    order is sequential (validation and test), so consecutive batches cycle through the whole
    split. A batch that crosses an epoch border takes the rest of the old epoch and the start
    of the new one, so no example is skipped and no batch is served twice.
    """

    def __init__(self, n: int, rng: np.random.Generator | None) -> None:
        self._n = n
        self._rng = rng
        self._order = self._new_epoch()
        self._pos = 0

    def _new_epoch(self) -> np.ndarray:
        return np.arange(self._n) if self._rng is None else self._rng.permutation(self._n)

    def take(self, k: int) -> np.ndarray:
        """The next ``k`` indices (``k`` may exceed ``n``)."""
        parts = []
        while k > 0:
            if self._pos == self._n:
                self._order, self._pos = self._new_epoch(), 0
            chunk = self._order[self._pos : self._pos + k]
            parts.append(chunk)
            self._pos += len(chunk)
            k -= len(chunk)
        return np.concatenate(parts)


class Data(DataSource):
    """Base class of in-memory data classes: arrays of examples and labels per split.

    Subclasses (or users) pass the arrays; the base class provides batches, the contract's
    attributes and a private random stream. A subclass that computes its examples (overriding
    ``_examples`` and ``n_examples``, as :class:`~elektronn.data.mnist.MNISTData` does) sets the
    attributes those need before calling ``Data.__init__``, which draws one example to learn
    ``example_shape``. It fixes three bugs of the original ``Data``:
    the first batch after a reshuffle is no longer served twice, 'valid'/'test' batches walk
    the whole split instead of always returning its first examples, and :meth:`reseed` gives
    each background worker its own stream instead of identical batches in every worker.

    Parameters
    ----------
    train_d, train_l
        Training examples ``(n, *example_shape)`` and labels ``(n,)``.
    valid_d, valid_l, test_d, test_l
        Optional validation and test splits of the same layout.
    n_lab
        Number of classes; by default ``max(train_l) + 1`` (negative labels mean "ignore"
        and are not counted). Required for float (regression) labels.
    seed
        Seed of :attr:`rng`; None draws fresh entropy.

    Attributes
    ----------
    n_lab, example_shape, n_ch
        As in the contract; ``n_ch`` is the first axis of image examples ``(ch, x, y[, z])``
        and 1 for vectors and sequences.
    rng : numpy.random.Generator
        The instance's random generator, used for shuffling and by subclasses for augmentation.
    """

    def __init__(
        self,
        train_d: np.ndarray,
        train_l: np.ndarray,
        valid_d: np.ndarray | None = None,
        valid_l: np.ndarray | None = None,
        test_d: np.ndarray | None = None,
        test_l: np.ndarray | None = None,
        *,
        n_lab: int | None = None,
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        self.train_d, self.train_l = _split_arrays("train", train_d, train_l)
        self.valid_d, self.valid_l = _split_arrays("valid", valid_d, valid_l)
        self.test_d, self.test_l = _split_arrays("test", test_d, test_l)
        self.n_lab = _count_classes(self.train_l) if n_lab is None else int(n_lab)
        self.reseed(seed)
        self.example_shape = tuple(self._examples("train", np.arange(1))[0].shape[1:])
        self.n_ch = self.example_shape[0] if len(self.example_shape) >= 3 else 1

    def reseed(self, seed: int | np.random.SeedSequence | None) -> None:
        """Start a new random stream (background workers call this with their own seeds).

        The training permutation is redrawn and the valid/test walks restart, so the same seed
        always gives the same sequence of batches.
        """
        self.rng = np.random.default_rng(seed)
        self._streams = {
            source: _IndexStream(self.n_examples(source), self.rng if source == "train" else None)
            for source in SOURCES
            if self.has_source(source)
        }

    @property
    def n_train(self) -> int:
        """Number of training examples (as logged)."""
        return self.n_examples("train")

    def n_examples(self, source: str) -> int:
        """Number of examples of a split (0 where it is absent)."""
        labels = getattr(self, f"{_checked_source(source)}_l")
        return 0 if labels is None else len(labels)

    def has_source(self, source: str) -> bool:
        """Whether batches from ``source`` ('train', 'valid', 'test') exist."""
        return self.n_examples(source) > 0

    def training_labels(self) -> Iterator[np.ndarray]:
        """The labels of the training split (one array)."""
        return iter([self.train_l])

    def summary(self) -> str:
        """The original's log line, e.g. '10-class Data Set: #training examples: 200000 …'."""
        return (
            f"{self.n_lab}-class Data Set: #training examples: {self.n_train} and "
            f"#validation examples: {self.n_examples('valid')}"
        )

    def getbatch(self, batch_size: int, source: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """The next batch ``(data, labels)`` from ``source``.

        'train' walks a random permutation, reshuffled every epoch. 'valid' and 'test' walk
        their split in order and start again at the end, so monitoring batches drawn over many
        calls together see the whole split (one call sees ``batch_size`` consecutive examples).
        Subclasses add augmentation keywords (they arrive from ``data_batch_kwargs``).
        """
        return self._examples(source, self._next_indices(source, batch_size))

    def iter_split(self, source: str, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every example of ``source`` exactly once, in order, without augmentation.

        For evaluating a whole split (``testModel('test')``); the last batch may be smaller.
        Does not move the position of :meth:`getbatch`.
        """
        n = self.n_examples(source)
        if n == 0:
            raise PluginError(f"This data set has no '{source}' split.")
        for start in range(0, n, batch_size):
            yield self._examples(source, np.arange(start, min(start + batch_size, n)))

    def _next_indices(self, source: str, batch_size: int) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        stream = self._streams.get(_checked_source(source))
        if stream is None:
            raise PluginError(f"This data set has no '{source}' split to draw batches from.")
        return stream.take(batch_size)

    def _examples(self, source: str, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The examples and labels at ``indices`` of a split (subclasses may compute them)."""
        return getattr(self, f"{source}_d")[indices], getattr(self, f"{source}_l")[indices]


def _checked_source(source: str) -> str:
    if source not in SOURCES:
        raise PluginError(f"source must be one of {', '.join(map(repr, SOURCES))}, not {source!r}.")
    return source


def _split_arrays(
    name: str, data: np.ndarray | None, labels: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """float32 examples and int16 (classes) or float32 (regression) labels, checked to match."""
    if data is None and labels is None:
        return None, None
    if data is None or labels is None or len(data) != len(labels):
        raise PluginError(
            f"The '{name}' split needs examples and labels of the same length, got "
            f"{None if data is None else len(data)} examples and "
            f"{None if labels is None else len(labels)} labels."
        )
    labels = np.asarray(labels)
    if np.issubdtype(labels.dtype, np.integer):
        info = np.iinfo(np.int16)
        if labels.size and (labels.min() < info.min or labels.max() > info.max):
            raise PluginError(f"The '{name}' labels do not fit int16 class indices.")
        labels = labels.astype(np.int16)
    else:
        labels = labels.astype(np.float32)
    return np.asarray(data, dtype=np.float32), labels


def _count_classes(labels: np.ndarray) -> int:
    if not np.issubdtype(labels.dtype, np.integer):
        raise PluginError("Float (regression) labels need n_lab, the number of outputs.")
    return int(labels.max(initial=-1)) + 1
