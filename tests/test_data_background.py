"""BackgroundBatches: shared data, independent streams, settings updates, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest
from makers import coded_volume, image_data

from elektronn.data import BackgroundBatches, ImageData
from elektronn.data.background import MAX_RESTARTS, WaitStopped, WorkersFailed


def make(tmp_path, image, **kwargs) -> ImageData:
    kwargs.setdefault("n_dim", 2)
    kwargs.setdefault("patch_shape", (9, 9))
    return image_data(tmp_path, image, np.zeros(image.shape[-3:], np.uint8), seed=0, **kwargs)


def gone(pids, timeout=5.0) -> bool:
    """Whether all processes have ended (zombies count as ended) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.05)
    return False


def test_batches_from_workers(tmp_path):
    data = make(tmp_path, coded_volume((30, 30, 4)))
    with BackgroundBatches(data, dict(batch_size=3, warp_on=True), 2) as batches:
        assert len(batches.pids) == 2
        pids = batches.pids
        images, labels = batches.get()
        assert images.shape == (3, 1, 9, 9) and labels.shape == (3, 9, 9)
        assert images.dtype == np.float32 and labels.dtype == np.int16
        for _ in range(5):
            batches.get()
        assert batches.n_successful_warp >= 18 and batches.n_failed_warp == 0
    assert gone(pids) and batches.pids == []
    with pytest.raises(RuntimeError, match="closed"):
        batches.get()


def test_zero_workers_same_interface(tmp_path):
    data = make(tmp_path, coded_volume((30, 30, 4)))
    with BackgroundBatches(data, dict(batch_size=2, warp_on=True), 0) as batches:
        assert batches.get()[0].shape == (2, 1, 9, 9) and batches.n_successful_warp == 2
        batches.update(warp_on=False, batch_size=4)
        assert batches.get()[0].shape == (4, 1, 9, 9) and batches.n_successful_warp == 2


def test_workers_have_independent_streams(tmp_path):
    data = make(tmp_path, coded_volume((40, 40, 10)))
    with BackgroundBatches(data, dict(batch_size=4, flip=False), 2) as batches:
        corners = [tuple(batches.get()[0][:, 0, 0, 0]) for _ in range(12)]
    assert len(set(corners)) == 12


def test_update_reaches_the_next_batch(tmp_path):
    data = make(tmp_path, np.full((30, 30, 4), 0.5, np.float32))
    kwargs = dict(batch_size=4, grey_augment_channels=[0])
    with BackgroundBatches(data, kwargs, 2, slots_per_worker=3) as batches:
        assert not np.allclose(batches.get()[0], 0.5)
        batches.update(grey_augment_channels=[])
        for _ in range(6):
            assert (batches.get()[0] == 0.5).all()
        batches.update(grey_augment_channels=[0])
        assert not np.allclose(batches.get()[0], 0.5)
        assert batches.batch_kwargs["grey_augment_channels"] == [0]


def test_update_of_data_attributes_and_layout(tmp_path):
    data = make(tmp_path, coded_volume((12, 12, 12)))
    with BackgroundBatches(data, dict(batch_size=20, flip=False), 2) as batches:
        steps = {abs(int(p[1, 0] - p[0, 0])) for p in batches.get()[0][:, 0]}
        assert steps == {100}  # only z-slices
        batches.update(anisotropic_data=False)
        steps = {abs(int(p[1, 0] - p[0, 0])) for p in batches.get()[0][:, 0]}
        assert steps == {100, 10000, 1} and data.anisotropic_data is False
        old = batches.pids
        batches.update(batch_size=3)
        assert batches.get()[0].shape == (3, 1, 9, 9) and gone(old) and len(batches.pids) == 2
        with pytest.raises(ValueError, match="neither arguments"):
            batches.update(no_such_setting=1)


def test_a_worker_failing_on_new_settings_restores_the_previous_ones(tmp_path):
    data = make(tmp_path, coded_volume((20, 20, 4)))
    reports = []
    with BackgroundBatches(data, dict(batch_size=2), 1, report=reports.append) as batches:
        batches.get()
        batches.update(grey_augment_channels=[3])
        for _ in range(3):
            assert batches.get()[0].shape == (2, 1, 9, 9)
        assert batches.batch_kwargs == {"batch_size": 2}
    assert len(reports) == 1 and "undone, grey_augment_channels as before" in reports[0]


class FailingData(ImageData):
    """Fails in the workers (not in the process that made it), as a broken data class would."""

    def getbatch(self, batch_size=1):
        if os.getpid() != self.parent:
            raise OSError("the disk went away")
        return super().getbatch(batch_size)


def test_workers_that_keep_failing_end_with_one_message_after_the_last_replacement(tmp_path):
    data = make(tmp_path, coded_volume((20, 20, 4)))
    data.__class__, data.parent = FailingData, os.getpid()
    reports = []
    with BackgroundBatches(data, dict(batch_size=2), 1, report=reports.append) as batches:
        with pytest.raises(WorkersFailed, match="the disk went away.*replaced 3 times"):
            batches.get()
    assert len(reports) == MAX_RESTARTS and "replacement 3 of 3" in reports[-1]


def test_a_killed_worker_is_reported_and_replaced_within_seconds(tmp_path):
    data = make(tmp_path, coded_volume((20, 20, 4)))
    reports = []
    with BackgroundBatches(data, dict(batch_size=2), 2, report=reports.append) as batches:
        batches.get()
        victim = batches.pids[0]
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        while not reports:
            batches.get()
            assert time.monotonic() - t0 < 5
        assert "worker 0 ended (killed by SIGKILL)" in reports[0]
        assert victim not in batches.pids and len(batches.pids) == 2
        for _ in range(6):
            batches.get()


def test_stopped_workers_are_found_hung_and_replaced(tmp_path):
    data = make(tmp_path, coded_volume((20, 20, 4)))
    reports = []
    with BackgroundBatches(
        data, dict(batch_size=2), 2, slots_per_worker=1, hung_floor_s=1.0, report=reports.append
    ) as batches:
        batches.get()
        for pid in batches.pids:
            os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        for _ in range(4):
            batches.get()
        assert time.monotonic() - t0 < 10
        assert any("delivered no batch" in r and "hung" in r for r in reports), reports


def test_waiting_gives_up_when_the_run_is_to_stop(tmp_path):
    data = make(tmp_path, coded_volume((20, 20, 4)))
    with BackgroundBatches(data, dict(batch_size=2), 1, slots_per_worker=1) as batches:
        batches.get()
        os.kill(batches.pids[0], signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(WaitStopped):
            for _ in range(3):
                batches.get(should_stop=lambda: time.monotonic() - t0 > 1.0)
        assert time.monotonic() - t0 < 3


def test_workers_ignore_sigint(tmp_path):
    data = make(tmp_path, coded_volume((20, 20, 4)))
    with BackgroundBatches(data, dict(batch_size=2), 2) as batches:
        batches.get()
        for pid in batches.pids:
            os.kill(pid, signal.SIGINT)
        time.sleep(0.3)
        assert all(psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in batches.pids)
        for _ in range(4):
            batches.get()


def test_workers_end_on_sigterm_despite_a_trainer_handler(tmp_path):
    data = make(tmp_path, coded_volume((20, 20, 4)))
    previous = signal.signal(signal.SIGTERM, lambda *args: None)  # like the trainer's
    try:
        reports = []
        with BackgroundBatches(
            data, dict(batch_size=2), 1, slots_per_worker=1, report=reports.append
        ) as batches:
            batches.get()
            first = batches.pids
            os.kill(first[0], signal.SIGTERM)
            assert gone(first, timeout=2.0)
            for _ in range(3):  # a batch may still be waiting in the queue
                batches.get()
            assert "killed by SIGTERM" in reports[0]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_workers_share_the_volumes(tmp_path):
    """A worker's private memory stays far below the size of the data it samples from."""
    data = make(tmp_path, np.zeros((512, 512, 96), np.uint8), patch_shape=(64, 64))
    size = data.cubes[0].image.nbytes  # 96 MiB of float32
    with BackgroundBatches(data, dict(batch_size=8, warp_on=True), 1) as batches:
        for _ in range(40):  # touches every part of the volume
            batches.get()
        private = psutil.Process(batches.pids[0]).memory_full_info().uss
    assert private < size / 2, (private, size)


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from elektronn.data import BackgroundBatches, ImageData

    data = ImageData([("img.h5", "raw")], [("lab.h5", "lab")], data_path=sys.argv[1],
                     label_path=sys.argv[1], n_dim=2, patch_shape=(9, 9))
    batches = BackgroundBatches(data, dict(batch_size=2, warp_on=True), 2)
    batches.get()
    print(json.dumps(batches.pids), flush=True)
    time.sleep(120)
    """
)


def test_sigkilled_trainer_leaves_no_workers_and_no_shared_memory(tmp_path):
    make(tmp_path, coded_volume((30, 30, 4)))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        pids = json.loads(child.stdout.readline())
        assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert gone(pids), "a worker outlived the SIGKILLed trainer"
    finally:
        child.kill()
        child.stdout.close()
    assert not [name for name in os.listdir("/dev/shm") if "elektronn" in name]
