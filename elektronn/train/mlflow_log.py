"""Optional MLflow logging of the resolved config, the training history and the previews.

Active only where MLflow can write a local store: ``mlflow`` (or the lighter
``mlflow-skinny``) with SQLAlchemy and alembic, as ``pip install "elektronn[mlflow]"``
installs them. elektronn never depends on them; without them :func:`build_logger` returns
None. The ``loggers`` option without ``"mlflow"`` switches it off.

Offline, without a server: the tracking store is the SQLite database
``<save_dir>/mlruns/mlflow.db``, the artifacts go to ``<save_dir>/mlruns/artifacts/``. (MLflow
3's plain-folder file store is in maintenance mode and refuses to open unless
``MLFLOW_ALLOW_FILE_STORE=true``; SQLite is MLflow's own default store.) Look at a run with
the full ``mlflow`` package::

    mlflow ui --backend-store-uri sqlite:///$HOME/CNN_Training/<save_name>/mlruns/mlflow.db

The experiment is named after ``save_name``. Every start of training is one run in it: its
parameters are the resolved configuration (``Backup/resolved_config.py``; each value as its
Python text, strings as they are), its metrics are the values of the status line at every
history step (the names TensorBoard uses: ``loss/smoothed``, ``error/valid``, ...; the step is
the update step), and the preview PNGs are its artifacts under ``previews/``. The run ends
with training: ``FINISHED`` (also after Ctrl+C or SIGTERM), ``FAILED`` on an error, ``KILLED``
without the final save. A resumed run (``--resume``) is a new run of the same experiment,
named ``<save_name> resumed at step N``, whose metrics continue at the resumed steps: a new
run rather than the old one, because MLflow's parameters cannot change and ``--set`` may
change them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .loggers import Outcome, history_values

STORE_FOLDER = "mlruns"
"""Sub-folder of the save directory that holds the store and the artifacts."""

DATABASE = "mlflow.db"
ARTIFACTS = "artifacts"
PREVIEW_ARTIFACTS = "previews"
"""Artifact folder of the preview images."""

REQUIRED = ("mlflow", "sqlalchemy", "alembic")
"""What MLflow needs to write a local SQLite store (``mlflow-skinny`` lacks the last two)."""

_BATCH = 100
"""Parameters per request: MLflow's limit of one ``log_batch``."""


def missing() -> list[str]:
    """The packages of :data:`REQUIRED` that are not installed (nothing is imported)."""

    def found(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # e.g. a module set to None in sys.modules
            return False

    return [name for name in REQUIRED if not found(name)]


def available() -> bool:
    """Whether MLflow logging can be used."""
    return not missing()


def build_logger(
    save_dir: str | Path,
    experiment: str,
    params: Callable[[], Mapping[str, Any]],
    start_step: int = 0,
) -> MlflowLogger | None:
    """A logger writing to ``<save_dir>/mlruns/``, or None if MLflow is not installed.

    Where ``mlflow`` is installed without SQLAlchemy or alembic (``mlflow-skinny`` alone),
    one line says what to install. Nothing is created on disk until the first value.
    """
    if not usable():
        return None
    return MlflowLogger(Path(save_dir) / STORE_FOLDER, experiment, params, start_step)


def usable() -> bool:
    """Whether MLflow logging can be used; where ``mlflow`` is installed without SQLAlchemy or
    alembic, one line says what to install (nothing is imported: a cheap start-up check)."""
    absent = missing()
    if absent and "mlflow" not in absent:
        print(
            f"MLflow logging is off: it needs {' and '.join(absent)} for its local "
            f'store (pip install "elektronn[mlflow]").',
            flush=True,
        )
    return not absent


def param_text(value: Any, limit: int) -> str:
    """A config value as an MLflow parameter: strings as they are, others as Python text;
    longer than ``limit`` characters, cut and ended with ``...``."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class MlflowLogger:
    """Logs one run (one start of training) into the SQLite store of a save directory.

    The store is opened at the first call, after the background batch workers were forked;
    the run is then created, with the parameters read from ``params`` at that moment (a
    resumed run has restored its state by then).

    Parameters
    ----------
    store_dir
        Folder of the database and the artifacts (created on the first call).
    experiment
        Name of the experiment (the ``save_name``).
    params
        Returns the resolved configuration, ``{option: value}``.
    start_step
        The step a resumed run continues from (0: a new training).
    """

    name = "MLflow"

    def __init__(
        self,
        store_dir: str | Path,
        experiment: str,
        params: Callable[[], Mapping[str, Any]],
        start_step: int = 0,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.experiment = experiment
        self.params = params
        self.start_step = int(start_step)
        self.run_id: str | None = None
        self._client: Any = None

    @property
    def tracking_uri(self) -> str:
        from mlflow.utils.file_utils import path_to_local_sqlite_uri

        return path_to_local_sqlite_uri(str(self.store_dir / DATABASE))

    def _open(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self.store_dir.mkdir(parents=True, exist_ok=True)
            with _quiet():  # the database is created with INFO lines of mlflow and alembic
                client = MlflowClient(tracking_uri=self.tracking_uri)
                found = client.get_experiment_by_name(self.experiment)
            if found is not None:
                experiment_id = found.experiment_id
            else:
                artifacts = (self.store_dir / ARTIFACTS).resolve().as_uri()
                experiment_id = client.create_experiment(self.experiment, artifacts)
            start = self.start_step
            name = f"{self.experiment} resumed at step {start}" if start else self.experiment
            run = client.create_run(
                experiment_id, run_name=name, tags={"elektronn.start_step": str(start)}
            )
            self.run_id = run.info.run_id
            self._client = client
            self._log_params()
        return self._client

    def _log_params(self) -> None:
        from mlflow.entities import Param

        try:
            from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH as limit
        except ImportError:  # moved in some version: the oldest limit
            limit = 500
        params = [Param(str(k), param_text(v, limit)) for k, v in self.params().items()]
        for start in range(0, len(params), _BATCH):
            self._client.log_batch(self.run_id, params=params[start : start + _BATCH])

    def log_history(self, history: Any, step: int, its_per_s: float | None = None) -> None:
        """The status-line values of the newest history step as metrics at ``step``."""
        self.log_values(history_values(history, its_per_s), step)

    def log_values(self, values: Mapping[str, float], step: int) -> None:
        """Metrics ``{name: value}`` (finite floats: :func:`history_values`) at ``step``."""
        from mlflow.entities import Metric

        if not values:
            return
        client = self._open()
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in values.items()]
        client.log_batch(self.run_id, metrics=metrics)

    def log_images(self, paths: Iterable[str | Path], step: int) -> None:
        """The PNG files (the preview predictions) as artifacts in ``previews/``.

        Their names tell the slice and the training time
        (``<save_name>-pred-<cube>-c<class>-z<z>-<hours>hrs.png``).
        """
        paths = [Path(p) for p in paths]
        if not paths:
            return
        client = self._open()
        for path in paths:
            client.log_artifact(self.run_id, str(path), PREVIEW_ARTIFACTS)

    def close(self, outcome: Outcome = "FINISHED") -> None:
        """End the run with ``outcome`` as its status (idempotent)."""
        if self._client is not None:
            client, self._client = self._client, None
            client.set_terminated(self.run_id, status=outcome)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Only warnings and errors from the loggers of mlflow and alembic meanwhile."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
