"""h5 files opened once each for one command, so that its input and output may share a file.

Used by the commands that write h5 files (``elektronn-labels``, ``elektronn-predict``). The
training data path opens its files once per *process* instead (``data.ondisk.OpenFiles``:
read-only, zarr too, reopened after fork).
"""

from __future__ import annotations

import os
from contextlib import ExitStack

import h5py

PathLike = str | os.PathLike[str]


class H5Files:
    """Each h5 file opened once, until ``stack`` closes: the output for appending, others read-only.

    HDF5 refuses to open one file twice with different modes, and users do keep their input
    and the result in one file. Files are told apart by their real path.
    """

    def __init__(self, stack: ExitStack, output: PathLike | None) -> None:
        self._stack = stack
        self._output = os.path.realpath(output) if output is not None else None
        self._open: dict[str, h5py.File] = {}

    def get(self, path: PathLike) -> h5py.File:
        """The open file at ``path``; h5py's ``OSError`` if it cannot be opened."""
        real = os.path.realpath(path)
        if real not in self._open:
            file = self._open_file(path, writing=real == self._output)
            self._open[real] = self._stack.enter_context(file)
        return self._open[real]

    def _open_file(self, path: PathLike, writing: bool) -> h5py.File:
        """Open ``path`` on first use; commands override this to word their own errors."""
        return h5py.File(path, "a" if writing else "r")
