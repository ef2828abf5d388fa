"""Manual check of issue 17 item 4 on a real full disk: a small tmpfs, filled to several levels.

For each level the tiny 2D training of the tests runs with its save directory on a tmpfs of
``--size-kib`` KiB that a filler file has filled up to ``free`` bytes, and the last line of
stderr is printed with the state of the files left behind. Every run must end with one line
"... no space left on device while saving ..." and every file left must load.

Needs root (``mount -t tmpfs``); the tests simulate the full disk at the write layer instead
(``tests/test_full_disk.py``). Run: ``sudo python benchmarks/check_full_disk.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tiny import run_cli, tiny_config, write_cubes  # noqa: E402

from elektronn.net.paramfile import ParamFileError, load_params  # noqa: E402


def fill(mount: Path, free: int) -> None:
    """Leave ``free`` bytes on the file system at ``mount``."""
    for path in mount.iterdir():
        subprocess.run(["rm", "-rf", str(path)], check=True)
    stat = os.statvfs(mount)
    with open(mount / "filler", "wb") as f:
        f.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free))


def files_intact(save_dir: Path) -> str:
    """``k/n param files load`` for what the run left behind."""
    params = sorted(save_dir.glob("*.param"))
    good = 0
    for path in params:
        try:
            load_params(path)
            good += 1
        except ParamFileError:
            pass
    return f"{good}/{len(params)} param files load"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-kib", type=int, default=2048)
    parser.add_argument("--free", type=int, nargs="*", default=[0, 4096, 20_000, 40_000, 70_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, tempfile.TemporaryDirectory() as mount:
        work, mount = Path(work), Path(mount)
        write_cubes(work / "data")
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size_kib}k", "tmpfs",
                        str(mount)], check=True)  # fmt: skip
        try:
            for free in args.free:
                fill(mount, free)
                config = tiny_config(work, f"save_path = {str(mount)!r}\nn_steps = 400\n")
                result = run_cli(config, "--gpu=false", cwd=work)
                last = (result.stderr.strip().splitlines() or [""])[-1]
                print(f"free={free:>6}: exit {result.returncode}, "
                      f"{files_intact(mount / 'tiny')}, traceback: "
                      f"{'Traceback' in result.stderr}\n    {last}")  # fmt: skip
        finally:
            subprocess.run(["umount", str(mount)], check=True)


if __name__ == "__main__":
    main()
