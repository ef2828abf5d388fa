"""A disk that fills up during training: one line saying what could not be saved, and every
file written before intact.

The full disk is made at the write layer: the files the run opens in its save directory
(parameter files through ``os.fdopen``, logs through ``open``) are real files whose raw
writes stop, as the kernel's do, with a short write and then ``ENOSPC``, once the disk's few
free bytes are used. So the real save path -- torch's serialisation, numpy's ``.npy`` writer,
the buffered file objects -- meets the full disk at every fill level.
"""

from __future__ import annotations

import errno
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from tiny import tiny_config

from elektronn.net.paramfile import load_params
from elektronn.train import cli
from elektronn.train import history as history_module
from elektronn.train import trainer as trainer_module


class FullDisk:
    """``free`` bytes left for the files under ``folder``; other files are written normally."""

    def __init__(self, folder: Path, free: int) -> None:
        self.folder = str(folder)
        self.free = free
        self.real_fdopen, self.real_open = os.fdopen, open

    def _raw(self, file: int | str, mode: str) -> io.FileIO:
        disk = self

        class RawFile(io.FileIO):
            def write(self, data) -> int:
                if disk.free <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written = super().write(memoryview(data).cast("B")[: disk.free])
                disk.free -= written
                return written

        return RawFile(file, mode.replace("b", ""))

    def _buffered(self, raw: io.FileIO, mode: str) -> io.BufferedIOBase:
        return io.BufferedRandom(raw) if "+" in mode else io.BufferedWriter(raw)

    def fdopen(self, fd: int, mode: str = "r", *args, **kwargs):
        if (
            "b" in mode
            and "r" not in mode
            and os.readlink(f"/proc/self/fd/{fd}").startswith(self.folder)
        ):
            return self._buffered(self._raw(fd, mode), mode)
        return self.real_fdopen(fd, mode, *args, **kwargs)

    def open(self, path, mode: str = "r", *args, **kwargs):
        writes = "b" in mode and mode != "rb"
        if writes and os.path.abspath(path).startswith(self.folder):
            return self._buffered(self._raw(os.fspath(path), mode), mode)
        return self.real_open(path, mode, *args, **kwargs)


ONE_LINE = re.compile(
    r"elektronn-train: error: training stopped at step \d+: no space left on device while "
    r"saving the (parameters|training logs) to \S+; (nothing was saved|.*continue with "
    r"'elektronn-train --resume \S+')\."
)


@pytest.mark.parametrize("free", [60, 700, 12_000, 31_500, 50_000])
def test_full_disk_at_any_fill_level_is_one_line(tmp_path, tiny_data, monkeypatch, capsys, free):
    disk = FullDisk(tmp_path / "runs", free)
    monkeypatch.setattr(os, "fdopen", disk.fdopen)
    monkeypatch.setattr(history_module, "open", disk.open, raising=False)
    monkeypatch.chdir(tmp_path)  # the run changes into its save directory
    code = cli.train_main([str(tiny_config(tmp_path, "n_steps = 40\n")), "--gpu=false"])
    err = capsys.readouterr().err
    assert disk.free == 0, "the disk never filled up"
    assert code == 1 and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if "error" in line.lower()]) == 1, err
    assert ONE_LINE.fullmatch(err.strip().splitlines()[-1]), err
    save_dir = tmp_path / "runs" / "tiny"
    for param in save_dir.glob("*.param"):
        assert load_params(param)["extra"]["step"] >= 0
    for log in (save_dir / "Backup").glob("*.npy"):
        assert np.load(log).shape[1] > 0


def test_full_disk_while_drawing_the_final_plots_keeps_the_end_file(
    tmp_path, tiny_data, monkeypatch, capsys
):
    def no_space(save_dir, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(save_dir / "tiny.Errors.png"))

    monkeypatch.setattr(trainer_module, "create_plots", no_space)
    monkeypatch.chdir(tmp_path)
    code = cli.train_main([str(tiny_config(tmp_path)), "--gpu=false"])
    out, err = capsys.readouterr()
    save_dir = tmp_path / "runs" / "tiny"
    assert code == 0 and "Traceback" not in err, err
    assert f"No space left on device while saving the plots to {save_dir}" in out + err
    assert load_params(save_dir / "tiny_end.param")["extra"]["step"] == 12
