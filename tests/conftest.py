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


@pytest.fixture(scope="session")
def user_config_file(tmp_path_factory) -> Path:
    """The test user's ~/.elektronn.config: it only switches the run loggers off.

    With MLflow installed (the test extra), its store would cost every one of the suite's
    trainings seconds; tests/test_mlflow.py trains with the master defaults instead.
    """
    path = tmp_path_factory.mktemp("user") / "elektronn.config"
    path.write_text("loggers = []\n")
    return path


@pytest.fixture(autouse=True)
def no_user_defaults(user_config_file, monkeypatch):
    """Keep the developer's own ~/.elektronn.config out of every test (the test user's instead)."""
    monkeypatch.setenv("ELEKTRONN_USER_CONFIG", str(user_config_file))


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
