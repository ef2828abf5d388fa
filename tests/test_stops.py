"""How a run ends when it is stopped from outside or fails: hours of training are never lost.

Signals go to the real command line (``python -m elektronn.train``, no terminal); the full disk
is simulated in-process, since a monkeypatch cannot cross into a child process; the kill
during a save runs the command line in a child that SIGKILLs itself half-way through writing.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
from tiny import ENDLESS, STATUS_LINE, Training, data_class_config, run_cli, tiny_config

from elektronn.net.paramfile import load_params
from elektronn.train import cli
from elektronn.train import trainer as trainer_module

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers


def shared_memory_files(pid: int) -> set[str]:
    """Files in /dev/shm that process ``pid`` has mapped (named shared memory, semaphores)."""
    with open(f"/proc/{pid}/maps") as maps:
        return {
            line.split(None, 5)[5].strip().removesuffix(" (deleted)")
            for line in maps
            if "/dev/shm/" in line
        }


@pytest.mark.parametrize(
    "signum, workers", [(signal.SIGTERM, 2), (signal.SIGINT, 0)], ids=["SIGTERM", "SIGINT"]
)
def test_signal_without_terminal_saves_and_exits_0(tmp_path, tiny_data, signum, workers):
    config = tiny_config(tmp_path, ENDLESS + f"background_processes = {workers}\n")
    run = Training(config, cwd=tmp_path)
    try:
        run.wait_for(STATUS_LINE)
        worker_pids = [p.pid for p in psutil.Process(run.process.pid).children()]
        assert len(worker_pids) == workers
        run.process.send_signal(signum)
        code, output = run.finish()
    finally:
        run.kill()
    name = signal.Signals(signum).name
    assert code == 0, output
    assert f"({name} received)" in output and "Parameters saved to" in output, output
    end = load_params(tmp_path / "runs" / "tiny" / "tiny_end.param")
    assert end["extra"]["step"] > 0
    assert not [p for p in worker_pids if psutil.pid_exists(p)], "a worker outlived the run"


def run_in_own_terminal(args: list[str], cwd) -> tuple[subprocess.Popen, int]:
    """``python -m elektronn.train ARGS`` in a new session whose controlling terminal is a new
    pseudo-terminal, as in a terminal window or an ssh session; returns the process and the
    terminal's master end (closing it hangs the terminal up)."""
    import fcntl
    import termios

    master, slave = os.openpty()

    def take_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    command = [sys.executable, "-m", "elektronn.train", *args]
    process = subprocess.Popen(
        command, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, preexec_fn=take_terminal
    )
    os.close(slave)
    return process, master


def read_until(master: int, text: bytes, timeout: float = 120) -> bytes:
    import select

    seen, deadline = b"", time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, seen.decode(errors="replace")
        if select.select([master], [], [], 1)[0]:
            seen += os.read(master, 4096)
    return seen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux pseudo-terminals")
def test_a_closed_terminal_ends_the_run_like_sigterm(tmp_path, tiny_data):
    """Closing the terminal (a terminal window, a dropped ssh session) hangs it up: the kernel
    sends SIGHUP to the trainer and its workers, and every later write to the terminal fails.
    The run ends as after SIGTERM, with the final save and the end line (in the log, as
    nobody reads the terminal), instead of dying without ``_end.param``."""
    config = tiny_config(tmp_path, ENDLESS + "background_processes = 2\n")
    process, master = run_in_own_terminal([str(config), "--gpu=false"], tmp_path)
    try:
        read_until(master, b"NLLm=")
        os.close(master)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    save_dir = tmp_path / "runs" / "tiny"
    log = (save_dir / "tiny.log").read_text()
    assert code == 0, log
    assert re.search(r"End of training after \d+ steps \(SIGHUP received\)", log), log
    assert (save_dir / "tiny_end.param").is_file()


def test_sigkill_leaves_no_workers_and_no_shared_memory(tmp_path, tiny_data):
    config = tiny_config(tmp_path, ENDLESS + "background_processes = 2\n")
    run = Training(config, cwd=tmp_path)
    try:
        run.wait_for(STATUS_LINE)
        workers = psutil.Process(run.process.pid).children()
        assert len(workers) == 2
        pids = [run.process.pid, *(w.pid for w in workers)]
        mapped = set().union(*(shared_memory_files(pid) for pid in pids))
        run.process.send_signal(signal.SIGKILL)
        assert run.finish()[0] == -signal.SIGKILL
        _, alive = psutil.wait_procs(workers, timeout=10)
    finally:
        run.kill()
    assert not alive, f"workers {[p.pid for p in alive]} outlived the SIGKILLed trainer"
    assert not [path for path in mapped if os.path.exists(path)], mapped


def test_stopped_workers_never_keep_the_first_sigterm_from_ending_the_run(tmp_path, tiny_data):
    config = tiny_config(tmp_path, ENDLESS + "background_processes = 2\n")
    run = Training(config, cwd=tmp_path)
    try:
        run.wait_for(STATUS_LINE)
        workers = psutil.Process(run.process.pid).children()
        for worker in workers:
            worker.send_signal(signal.SIGSTOP)
        time.sleep(1.0)  # the prefetched batches run out: the trainer now waits for data
        t0 = time.monotonic()
        run.process.send_signal(signal.SIGTERM)
        code, output = run.finish(timeout=30)
        took = time.monotonic() - t0
    finally:
        run.kill()
    assert code == 0 and "(SIGTERM received)" in output, output
    assert took < 15, f"the first SIGTERM took {took:.1f} s to end the run"
    assert load_params(tmp_path / "runs" / "tiny" / "tiny_end.param")["extra"]["step"] > 0


def test_a_killed_worker_is_reported_and_replaced_and_training_goes_on(tmp_path, tiny_data):
    config = tiny_config(tmp_path, "n_steps = 400\nbackground_processes = 2\nhistory_freq = [50]\n")
    run = Training(config, cwd=tmp_path)
    try:
        run.wait_for(STATUS_LINE)
        victim = psutil.Process(run.process.pid).children()[0]
        victim.send_signal(signal.SIGKILL)
        line = run.wait_for(re.compile("Background batch worker"), timeout=30)
        code, output = run.finish(timeout=120)
    finally:
        run.kill()
    assert "ended (killed by SIGKILL); replacing it (replacement 1 of 3)" in line, line
    assert code == 0 and "n_steps=400 reached" in output, output


FLAKY_DATA = """
import numpy as np


class Flaky:
    \"\"\"Random vectors whose class is the sign of the first feature; fails after some calls.\"\"\"

    n_lab = 2
    example_shape = (4,)

    def __init__(self, fail_after=12):
        self.fail_after = fail_after
        self.calls = 0
        self.rng = np.random.default_rng(0)

    def getbatch(self, batch_size, source="train"):
        self.calls += 1
        if self.calls > self.fail_after:
            raise RuntimeError("the data server went away")
        x = self.rng.standard_normal((batch_size, 4)).astype(np.float32)
        return x, (x[:, 0] > 0).astype(np.int16)
"""


def test_exception_after_start_saves_last_and_explains(tmp_path):
    (tmp_path / "flaky.py").write_text(FLAKY_DATA)
    config = data_class_config(tmp_path, "flaky", "Flaky")
    result = run_cli(config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" in result.stderr and "flaky.py" in result.stderr  # the user's bug
    last_line = result.stderr.strip().splitlines()[-1]
    match = re.fullmatch(
        r"elektronn-train: error: training stopped at step (\d+): RuntimeError: the data "
        r"server went away; the parameters of step \1 were saved to (\S+-LAST\.param); "
        r"continue with 'elektronn-train --resume \S+'\.",
        last_line,
    )
    assert match, last_line
    saved = load_params(match[2])
    assert saved["extra"]["step"] == int(match[1]) > 0


def test_full_disk_is_one_message_and_exit_1(tmp_path, tiny_data, monkeypatch, capsys):
    real_save = trainer_module.save_params
    calls = []

    def disk_full_after_first_save(path, *args, **kwargs):
        calls.append(path)
        if len(calls) > 2:  # the first history step writes -LAST and -BEST
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "save_params", disk_full_after_first_save)
    monkeypatch.chdir(tmp_path)  # the run changes into its save directory
    code = cli.train_main([str(tiny_config(tmp_path)), "--gpu=false"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    last = tmp_path / "runs" / "tiny" / "tiny-LAST.param"
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert errors == [
        f"elektronn-train: error: training stopped at step 6: no space left on device while "
        f"saving the parameters to {last}; the last saved parameters in {last} are intact; "
        f"continue with 'elektronn-train --resume {last.parent}'."
    ]
    assert load_params(last)["extra"]["step"] == 1


KILLED_WHILE_SAVING = """
import os, signal, sys

from elektronn.train import cli

real_fdopen, calls = os.fdopen, []


class DiesHalfWay:
    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def fdopen_dying_in_second_save(fd, mode="r", *args, **kwargs):
    is_param = "-LAST.param." in os.readlink(f"/proc/self/fd/{fd}")  # not -BEST
    f = real_fdopen(fd, mode, *args, **kwargs)
    if is_param and mode == "wb":
        calls.append(1)
        if len(calls) >= 2:
            return DiesHalfWay(f)
    return f


os.fdopen = fdopen_dying_in_second_save
sys.exit(cli.train_main(sys.argv[1:]))
"""


def test_kill_during_save_keeps_previous_last_file(tmp_path, tiny_data):
    config = tiny_config(tmp_path)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_SAVING, str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    save_dir = tmp_path / "runs" / "tiny"
    half_written = list(save_dir.glob(".tiny-LAST.param.*.tmp"))
    assert len(half_written) == 1, "the kill did not happen while writing"
    assert load_params(save_dir / "tiny-LAST.param")["extra"]["step"] == 1
    resumed = run_cli("--resume", save_dir, "--set", "n_steps=8")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "at step 1" in resumed.stdout
