"""Shared test fixtures: the real data beside the project, and a clean user-defaults file."""

from pathlib import Path

import pytest
import torch
from tiny import write_cubes

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The ../shared/data folder (ISBI 2012, MNIST); skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def no_user_defaults(tmp_path, monkeypatch):
    """Keep the developer's own ~/.elektronn.config out of every test."""
    monkeypatch.setenv("ELEKTRONN_USER_CONFIG", str(tmp_path / "no-user-defaults.config"))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny nets run fastest on one thread, and a busy shared machine cannot stall them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """Two small synthetic membrane cubes in tmp_path/data (see tests/tiny.py)."""
    return write_cubes(tmp_path / "data")
