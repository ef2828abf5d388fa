"""Optional MLflow logging: absent packages → no logger; present → a readable local store.

The trainings here run with the master defaults (``loggers`` = TensorBoard and MLflow) and
read the store back with MLflow's own client, as a person comparing runs would.
"""

import signal
import subprocess
import sys

import pytest
from tiny import ENDLESS, STATUS_LINE, Training, data_class_config, run_cli, tiny_config

from elektronn.config import ConfigError, load_config
from elektronn.config.chain import USER_CONFIG_ENV
from elektronn.train import mlflow_log
from elektronn.train.loggers import ERROR_TAGS, HISTORY_TAGS, SPEED_TAG
from elektronn.train.savedir import BACKUP

pytestmark = pytest.mark.slow  # end-to-end: see pyproject's markers

PREVIEW = "initial_prev_h = 0.0\npreview_kwargs = dict(export_class=1, max_z_pred=1)\n"


@pytest.fixture(autouse=True)
def master_defaults(tmp_path, monkeypatch):
    """No user defaults at all: the loggers the options table switches on."""
    monkeypatch.setenv(USER_CONFIG_ENV, str(tmp_path / "no-user-defaults.config"))


def test_no_logger_without_mlflow(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert not mlflow_log.available()
    assert mlflow_log.build_logger(tmp_path, "run", dict) is None
    assert capsys.readouterr().out == ""  # no mlflow wanted, nothing said


def test_mlflow_without_its_database_packages_says_so(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # as mlflow-skinny alone
    assert mlflow_log.missing() == ["sqlalchemy"]
    assert mlflow_log.build_logger(tmp_path, "run", dict) is None
    assert "elektronn[mlflow]" in capsys.readouterr().out
    assert not (tmp_path / mlflow_log.STORE_FOLDER).exists()


def test_param_text():
    assert mlflow_log.param_text("tiny", 10) == "tiny"
    assert mlflow_log.param_text([6, 4], 10) == "[6, 4]"
    assert mlflow_log.param_text(None, 10) == "None"
    assert mlflow_log.param_text("x" * 20, 10) == "x" * 7 + "..."


def test_unknown_logger_is_a_config_error(tmp_path, tiny_data):
    with pytest.raises(ConfigError, match="'loggers' has 'wandb'"):
        load_config(tiny_config(tmp_path), ["loggers=['mlflow', 'wandb']"])


def test_switched_off_no_store(tmp_path, tiny_data):
    result = run_cli(tiny_config(tmp_path), "--set", "loggers=[]", "--set", "n_steps=6")
    assert result.returncode == 0, result.stderr
    save_dir = tmp_path / "runs" / "tiny"
    assert (save_dir / "tiny_end.param").is_file()
    assert not (save_dir / mlflow_log.STORE_FOLDER).exists()


# -- with mlflow installed ------------------------------------------------------------------


def _client(save_dir):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    store = mlflow_log.MlflowLogger(save_dir / mlflow_log.STORE_FOLDER, "", dict)
    return MlflowClient(tracking_uri=store.tracking_uri)


def _runs(client, name):
    """The runs of experiment ``name``, the first first."""
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def _steps(client, run, key):
    return [m.step for m in client.get_metric_history(run.info.run_id, key)]


def test_training_logs_config_metrics_and_previews(tmp_path, tiny_data):
    pytest.importorskip("mlflow")
    preview = f"preview_data_path = {str(tiny_data / 'raw_1.h5')!r}\n" + PREVIEW
    result = run_cli(tiny_config(tmp_path, preview + "random_seed = 3\n"))
    assert result.returncode == 0, result.stderr
    assert "mlflow" not in (result.stdout + result.stderr).lower()  # no lines of its own
    save_dir = tmp_path / "runs" / "tiny"
    client = _client(save_dir)
    (run,) = _runs(client, "tiny")
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    # the parameters are the resolved config, also what the run decided (seed, n_lab)
    resolved = (save_dir / BACKUP / "resolved_config.py").read_text()
    params = run.data.params
    assert {"n_steps", "save_name", "SGD_params", "random_seed", "n_lab", "loggers"} <= set(params)
    assert params["save_name"] == "tiny" and params["n_steps"] == "12"
    assert params["random_seed"] == "3" and params["n_lab"] == "2"
    assert f"SGD_params = {params['SGD_params']}" in resolved
    assert params["filters"] == "[6, 4]"
    # the status-line values at every history step (history_freq = 5, n_steps = 12)
    names = set(HISTORY_TAGS.values()) | set(ERROR_TAGS.values()) | {SPEED_TAG}
    assert set(run.data.metrics) == names
    for name in names:
        assert _steps(client, run, name) == [0, 5, 10], name
    first = client.get_metric_history(run.info.run_id, "error/train")[0].value
    assert f"train={first:05.2f}%" in result.stdout
    # the preview images (one z slice of class 1) as artifacts, as written beside the run
    pngs = sorted(p.name for p in save_dir.glob("tiny-pred-*.png"))
    assert pngs
    logged = client.list_artifacts(run.info.run_id, mlflow_log.PREVIEW_ARTIFACTS)
    assert sorted(a.path.rsplit("/", 1)[-1] for a in logged) == pngs
    assert (save_dir / mlflow_log.STORE_FOLDER / mlflow_log.DATABASE).is_file()


def test_resumed_training_is_a_new_run_of_the_experiment(tmp_path, tiny_data):
    pytest.importorskip("mlflow")
    first = run_cli(tiny_config(tmp_path), "--set", "n_steps=8")
    assert first.returncode == 0, first.stderr
    save_dir = tmp_path / "runs" / "tiny"
    resumed = run_cli("--resume", save_dir, "--set", "n_steps=18")
    assert resumed.returncode == 0, resumed.stderr
    client = _client(save_dir)
    runs = _runs(client, "tiny")
    assert [r.info.run_name for r in runs] == ["tiny", "tiny resumed at step 8"]
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert [r.data.params["n_steps"] for r in runs] == ["8", "18"]
    assert _steps(client, runs[0], "loss/train") == [0, 5]
    assert _steps(client, runs[1], "loss/train") == [10, 15]


def test_a_failing_logger_is_dropped_and_training_goes_on(tmp_path, tiny_data):
    pytest.importorskip("mlflow")
    save_dir = tmp_path / "runs" / "tiny"
    save_dir.mkdir(parents=True)
    (save_dir / mlflow_log.STORE_FOLDER).write_text("a file where the store would be")
    result = run_cli(tiny_config(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("MLflow logging stopped:") == 1
    assert "Traceback" not in result.stderr
    assert result.stdout.count("NLLm=") == 3  # every history step still printed
    assert (save_dir / "tiny_end.param").is_file()


FAILING_DATA = """
import numpy as np


class Failing:
    n_lab = 2
    example_shape = (4,)

    def __init__(self):
        self.calls = 0
        self.rng = np.random.default_rng(0)

    def getbatch(self, batch_size, source="train"):
        self.calls += 1
        if self.calls > 12:
            raise RuntimeError("the data server went away")
        x = self.rng.standard_normal((batch_size, 4)).astype(np.float32)
        return x, (x[:, 0] > 0).astype(np.int16)
"""


def test_a_run_that_fails_is_failed(tmp_path):
    pytest.importorskip("mlflow")
    (tmp_path / "failing.py").write_text(FAILING_DATA)
    config = data_class_config(tmp_path, "failing", "Failing")
    result = run_cli(config)
    assert result.returncode == 1 and "data server went away" in result.stderr
    client = _client(tmp_path / "runs" / "failing")
    (run,) = _runs(client, "failing")
    assert run.info.status == "FAILED"
    assert _steps(client, run, "loss/train")[0] == 0


def test_sigterm_ends_the_run_finished(tmp_path, tiny_data):
    pytest.importorskip("mlflow")
    run = Training(tiny_config(tmp_path, ENDLESS), cwd=tmp_path)
    try:
        run.wait_for(STATUS_LINE)
        run.process.send_signal(signal.SIGTERM)
        code, output = run.finish()
    finally:
        run.kill()
    assert code == 0 and "(SIGTERM received)" in output, output
    client = _client(tmp_path / "runs" / "tiny")
    (logged,) = _runs(client, "tiny")
    assert logged.info.status == "FINISHED"
    assert logged.data.metrics  # the history steps before the signal


TRAIN_AND_LIST_IMPORTS = """
import sys
from elektronn.config import load_config
from elektronn.train.run import build_trainer

trainer = build_trainer(load_config(sys.argv[1], ["n_steps=6"]))
try:
    trainer.run()
finally:
    trainer.close()
print("trainer imported:", sorted(set(sys.modules) & {"mlflow", "sqlalchemy", "alembic"}))
"""


def test_the_trainer_never_waits_for_mlflow_which_still_logs_every_history_step(
    tmp_path, tiny_data
):
    """Importing MLflow and creating its store took seconds of the first history step; the
    loggers now live in a child process, so the training process never imports them."""
    pytest.importorskip("mlflow")
    script = tmp_path / "train.py"
    script.write_text(TRAIN_AND_LIST_IMPORTS)
    result = subprocess.run([sys.executable, str(script), str(tiny_config(tmp_path))],
                            capture_output=True, text=True, cwd=tmp_path, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "trainer imported: []" in result.stdout, result.stdout
    client = _client(tmp_path / "runs" / "tiny")
    (run,) = _runs(client, "tiny")
    assert run.info.status == "FINISHED"
    assert _steps(client, run, "error/valid") == [0, 5]
