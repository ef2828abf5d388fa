"""h5 datasets as both commands name, open, create and write them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import h5py
import numpy as np

from ..h5files import H5Files, PathLike
from .errors import LabelError

_CHUNK_XY = 256
"""Largest x/y extent of an h5 chunk of the written datasets (z-extent is one slice)."""


class H5Ref(NamedTuple):
    """One h5 dataset, as the command line names it: ``FILE.h5:KEY``."""

    path: str
    key: str

    @classmethod
    def parse(cls, text: str) -> H5Ref:
        """Split ``FILE:KEY`` at the last colon (so a Windows drive letter stays in the path)."""
        path, sep, key = text.rpartition(":")
        if not sep or not path or not key:
            raise LabelError(
                f"'{text}' does not name an h5 dataset: write FILE.h5:KEY, e.g. labels.h5:lab."
            )
        return cls(path, key)

    def __str__(self) -> str:
        return f"{self.path}:{self.key}"


class LabelFiles(H5Files):
    """The command's h5 files (the output read-write, the others read-only), with its messages."""

    def _open_file(self, path: PathLike, writing: bool) -> h5py.File:
        """A missing input is an error, a missing output is created."""
        if not writing and not os.path.isfile(path):
            raise LabelError(f"The file {path} does not exist.")
        try:
            return super()._open_file(path, writing)
        except OSError as exc:
            action = "opened for writing" if writing else "read"
            raise LabelError(f"The file {path} cannot be {action} as an h5 file: {exc}.") from None

    def dataset(self, ref: H5Ref) -> h5py.Dataset:
        """The dataset ``ref`` names, or an error listing what the file holds instead."""
        h5 = self.get(ref.path)
        node = h5.get(ref.key)
        if not isinstance(node, h5py.Dataset):
            keys = ", ".join(repr(k) for k in h5.keys()) or "none"
            raise LabelError(
                f"The file {ref.path} has no dataset '{ref.key}'; the keys in it are: {keys}."
            )
        return node


@contextmanager
def new_dataset(
    files: LabelFiles,
    target: H5Ref,
    shape: tuple[int, ...],
    dtype: np.dtype,
    compress: bool,
    overwrite: bool,
) -> Iterator[h5py.Dataset]:
    """Create ``target``, written slice-wise; removed again if writing fails half-way.

    Chunks are one z-slice deep because both tools write slice by slice; gzip is used for
    labels, which the training docs recommend compressing (they shrink by large factors).
    """
    h5 = files.get(target.path)
    if target.key in h5:
        if not overwrite:
            raise LabelError(
                f"{target} already exists; choose another key or pass --overwrite to replace it."
            )
        del h5[target.key]
    chunks = tuple(min(n, _CHUNK_XY) for n in shape[:-1]) + (1,)
    dataset = h5.create_dataset(
        target.key,
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        compression="gzip" if compress else None,
    )
    try:
        yield dataset
    except BaseException:
        del h5[target.key]
        raise


def h5_arg(text: str) -> H5Ref:
    """:meth:`H5Ref.parse` for argparse, which shows only ArgumentTypeError messages."""
    try:
        return H5Ref.parse(text)
    except LabelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
