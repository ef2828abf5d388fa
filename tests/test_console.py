"""The Ctrl+C console: commands on a tiny real trainer, and a real run in a pseudo-terminal."""

import re
import sys

import numpy as np
import pytest
import torch
from tiny import tiny_config, write_cubes

from elektronn.config import load_config
from elektronn.data.background import BackgroundBatches
from elektronn.train import console, introspection

PROMPT = "@ELEKTRONN: "


# -- a tiny real trainer --------------------------------------------------------------------


def write_config(tmp_path, extra=""):
    """The tiny config of tests/tiny.py with its data."""
    write_cubes(tmp_path / "data")
    return tiny_config(tmp_path, extra)


def make_trainer(tmp_path, extra=""):
    """The tiny img-img trainer of :func:`write_config` after one training step."""
    return build_trainer(write_config(tmp_path, extra))


def build_trainer(config_path):
    """A Trainer built by the run's own factory, after one training step."""
    from elektronn.train.run import build_trainer as build

    trainer = build(load_config(config_path))
    trainer.batch = trainer.get_batch()
    trainer.last_loss = trainer.loss_ema = trainer.train_step(trainer.batch)
    trainer.step = 1
    return trainer


@pytest.fixture
def trainer(tmp_path):
    return make_trainer(tmp_path)


def drive(trainer, *lines):
    """Run the console on ``lines`` (then EOF, i.e. Ctrl+D); return the printed text."""
    pending = list(lines)
    prompts, printed = [], []

    def fake_input(prompt):
        prompts.append(prompt)
        if not pending:
            raise EOFError
        return pending.pop(0)

    console.run_console(trainer, input_fn=fake_input, output=lambda text: printed.append(str(text)))
    assert all(p.endswith(PROMPT) for p in prompts)
    return "\n".join(printed)


# -- entering and leaving -------------------------------------------------------------------


def test_status_line_and_menu_then_q(trainer):
    out = drive(trainer, "q", "never read")
    assert re.search(r"^00001 NLLm=\d\.\d{5}, NLL=\d\.\d{4}, ", out, re.M)
    assert re.search(r"^LR=0\.010000, MOM=0\.900000, [\d.]+ it/s, step 1/\d+, t=\d+s/\d+s, "
                     r"ETA (\d+s|n/a)$", out, re.M)  # fmt: skip
    assert ">> tiny <<" in out and "'sethist <int>'" in out and "'LBFGS'" in out
    assert out.endswith("Continuing training")
    assert trainer.stop_reason is None and not trainer.killed


def test_eof_leaves_like_q(trainer):
    drive(trainer)
    assert trainer.stop_reason is None and not trainer.killed


def test_abort_and_kill(tmp_path):
    first = make_trainer(tmp_path / "a")
    drive(first, "abort")
    assert first.stop_reason and not first.killed
    second = make_trainer(tmp_path / "b")
    drive(second, "kill")
    assert second.killed


# -- commands -------------------------------------------------------------------------------


def test_setlr_and_setmom(trainer):
    out = drive(trainer, "setlr 0.005", "setlr abc", "setlr -1", "setmom 0.5", "setmom 1.5")
    assert trainer.optimizer.lr == 0.005
    assert trainer.optimizer.momentum == 0.5
    assert "Could not convert 'abc'" in out
    assert "not -1.0" in out and "not 1.5" in out


def test_setmom_refused_without_momentum(trainer):
    trainer.switch_optimizer("RPROP")
    out = drive(trainer, "setmom 0.5")
    assert "has no momentum" in out


@pytest.mark.parametrize("bad", ["0", "-3", "ten", "2.5", ""])
def test_sethist_refuses_non_positive_and_non_integers(trainer, bad):
    out = drive(trainer, f"sethist {bad}")
    assert trainer.run_state.history_freq == 5
    assert "at least 1 step" in out or "Could not convert" in out


def test_sethist_sets_the_frequency(trainer):
    drive(trainer, "sethist 7")
    assert trainer.run_state.history_freq == 7


def test_optimizer_switch(trainer):
    out = drive(trainer, "Adam")
    assert trainer.run_state.optimizer == "Adam"
    assert "Changing training optimizer to Adam" in out
    drive(trainer, "SGD")
    assert trainer.run_state.optimizer == "SGD"
    assert trainer.run_state.resolved(trainer.config)["optimizer"] == "SGD"


def test_setlr_and_setmom_survive_switching_to_cg_and_back(trainer):
    drive(trainer, "setlr 0.003", "setmom 0.5", "CG", "SGD", "q")
    trainer.apply_lr_schedule()
    assert trainer.optimizer.lr == pytest.approx(0.003)
    assert trainer.optimizer.momentum == pytest.approx(0.5)
    assert trainer.run_state.lr_schedule[trainer.step] == pytest.approx(0.003)


def test_save_load_round_trip(trainer):
    saved = {k: v.clone() for k, v in trainer.cnn.state_dict().items()}
    out = drive(trainer, "save")
    assert (trainer.save_dir / "CNN.save").is_file() and "CNN.save" in out
    with torch.no_grad():
        for p in trainer.cnn.parameters():
            p.add_(1.0)
    trainer.train_step(trainer.batch)  # leave some momentum behind
    drive(trainer, "setlr 0.003", "setmom 0.7", "load")
    for name, value in trainer.cnn.state_dict().items():
        torch.testing.assert_close(value, saved[name])
    assert all((v == 0).all() for v in trainer.optimizer.velocity), "momenta must be reset"
    assert (trainer.optimizer.lr, trainer.optimizer.momentum) == (0.003, 0.7)


def test_save_to_named_file_and_load_missing_file(trainer):
    out = drive(trainer, "save other.param", "load nope.param")
    assert (trainer.save_dir / "other.param").is_file()
    assert "nope.param" in out  # the error is printed, the console goes on


def test_params_prints_correct_statistics(trainer):
    out = drive(trainer, "params")
    name, p = next(iter(trainer.cnn.named_parameters()))
    w = p.detach().double().numpy()
    line = next(line for line in out.splitlines() if line.startswith(name))
    numbers = [float(x) for x in line.split()[-3:]]
    expected = [np.abs(w).mean(), w.std(), np.median(np.abs(w))]
    assert numbers == pytest.approx(expected, rel=2e-3)
    assert str(tuple(w.shape)) in line
    assert "Total count of trainable parameters" in out
    assert re.search(r"^Progress: step 1/\d+, t=\d+s/\d+s, ETA (\d+s|n/a), best=", out, re.M)


def test_sf_writes_the_filter_image(trainer):
    drive(trainer, "sf")
    assert (trainer.save_dir / "filters_layer0.png").stat().st_size > 0


def test_smooth_blurs_the_first_layer_in_place(trainer):
    weight = introspection.first_layer_weight(trainer.cnn)
    before = weight.detach().clone()
    drive(trainer, "smooth")
    after = introspection.first_layer_weight(trainer.cnn)
    assert after is weight
    roughness = lambda w: (w[..., 1:, :] - w[..., :-1, :]).abs().mean()  # noqa: E731
    assert roughness(after) < roughness(before)


# -- free input -----------------------------------------------------------------------------


def test_bare_expressions_print_their_value(trainer):
    out = drive(trainer, "config.n_steps", "i", "data.n_failed_warp", "cnn.n_lab", "q")
    assert out.splitlines()[-5:-1] == ["12", "1", "0", "2"]


def test_statements_are_executed_and_names_persist(trainer, capsys):
    out = drive(trainer, "x = 40 + 2", "x", "print(config.save_name)", "run.n_steps = 99")
    assert "42" in out.splitlines()
    assert capsys.readouterr().out.strip() == "tiny"
    assert trainer.run_state.n_steps == 99


def test_the_users_config_is_read_only_and_says_what_can_change(trainer):
    out = drive(trainer, "config.n_steps = 99", "q")
    assert "read-only" in out and "run.n_steps" in out
    assert trainer.config.n_steps == 12


def test_an_exception_is_printed_and_the_console_goes_on(trainer):
    out = drive(trainer, "1/0", "nonexistent_name", "def", "exit()", "setlr 0.002", "q")
    assert "ZeroDivisionError: division by zero" in out
    assert "NameError" in out and "SyntaxError" in out and "'abort'" in out
    assert trainer.optimizer.lr == 0.002
    assert out.endswith("Continuing training")


def test_assignment_to_a_command_name_is_python(trainer, capsys):
    out = drive(trainer, "params = 3", "print(params + 1)")
    assert capsys.readouterr().out.strip() == "4"
    assert "mean|w|" not in out


def test_debug_get_cnn_batch(trainer):
    out = drive(trainer, "d, l, i1, i2 = self.debugGetCNNBatch()", "d.shape", "l.shape", "i1")
    lines = out.splitlines()
    assert str((2, *trainer.data.example_shape)) in lines
    unstrided = trainer.data.geometry.label_shape(strided=False)
    assert str((2, *unstrided)) in lines, "labels must be unstrided"
    assert "None" in lines, "no lazy labels: no info"
    assert (trainer.save_dir / "debugGetCNNBatch.png").stat().st_size > 0


PLUGIN = """
import numpy as np
from elektronn.data.plugins import Data

class Blobs(Data):
    def __init__(self, seed=None):
        x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int16)
        super().__init__(x[:40], y[:40], x[40:50], y[40:50], x[50:], y[50:], seed=seed)
"""


def test_test_split_of_a_plugin_mlp(tmp_path, capsys):
    (tmp_path / "blobs.py").write_text(PLUGIN)
    config = tmp_path / "mlp.py"
    config.write_text(
        f"save_path = {str(tmp_path / 'runs')!r}\nsave_name = 'mlp'\nmode = 'vect-scalar'\n"
        f"data_class_name = ({str(tmp_path / 'blobs.py')!r}, 'Blobs')\nMLP_layers = [8]\n"
        "batch_size = 4\nmonitor_batch_size = 8\nplot_on = False\n"
    )
    trainer = build_trainer(config)
    out = drive(trainer, "self.testModel('test')", "sf", "smooth", "self.debugGetCNNBatch()")
    assert re.search(
        r"^test: loss=\d\.\d{5}, error=[\d.]+ % \(one monitor batch of 8",
        capsys.readouterr().out,
        re.M,
    )
    assert (trainer.save_dir / "filters_layer0.png").is_file()
    assert (trainer.save_dir / "debugGetCNNBatch.png").is_file()
    assert "Only convolution filters can be smoothed" in out


def test_test_model_prints(trainer, capsys):
    drive(trainer, "self.testModel('valid')", "self.testModel('test')")
    out = capsys.readouterr().out
    assert re.search(r"valid: loss=\d\.\d{5}, error=[\d.]+ %", out)
    assert "no 'test' examples" in out


# -- settings reach the background workers --------------------------------------------------


class RecordingBatches(BackgroundBatches):
    """In-process batches that record update() calls and optionally refuse them."""

    def __init__(self, trainer, refuse=False):
        super().__init__(trainer.data, trainer.batches.batch_kwargs, n_proc=0)
        self.updates, self.refuse = [], refuse

    def update(self, **changes):
        if self.refuse:
            raise ValueError("refused")
        self.updates.append(changes)
        super().update(**changes)


def recording(trainer, refuse=False):
    trainer.batches = RecordingBatches(trainer, refuse)
    return trainer.batches


def test_changed_settings_are_sent_to_the_workers(trainer):
    batches = recording(trainer)
    drive(trainer, "batch_kwargs['warp_on'] = 0.5", "data.upright_x = True", "q")
    assert batches.updates == [{"warp_on": 0.5, "upright_x": True}]
    drive(trainer, "batch_kwargs['batch_size'] = 3", "q")
    assert batches.updates[-1] == {"batch_size": 3} and batches.batch_size == 3
    assert len(trainer.get_batch()[0]) == 3


def test_nothing_is_sent_without_changes(trainer):
    batches = recording(trainer)
    drive(trainer, "data.n_failed_warp", "self.debugGetCNNBatch()", "q")
    assert batches.updates == []


def test_refused_settings_are_undone(trainer):
    batches = recording(trainer, refuse=True)
    out = drive(trainer, "batch_kwargs['flip'] = False", "data.upright_x = True")
    assert batches.batch_kwargs["flip"] is True and trainer.data.upright_x is False
    assert "undone" in out


def test_real_workers_switch_warping_on_from_the_next_batch(trainer):
    kwargs = dict(trainer.batches.batch_kwargs)
    with BackgroundBatches(trainer.data, kwargs, n_proc=1) as batches:
        trainer.batches = batches
        batches.get()
        assert batches.n_successful_warp == 0
        drive(trainer, "batch_kwargs['warp_on'] = True")
        for _ in range(3):
            batches.get()
        warped = batches.n_successful_warp + batches.n_failed_warp
        assert warped > 0
        out = drive(trainer, "data.n_successful_warp + data.n_failed_warp", "q")
        assert int(out.splitlines()[-2]) >= warped


# -- introspection images -------------------------------------------------------------------


def test_filter_tiles_show_every_z_slice_of_3d_filters():
    weight = np.random.default_rng(0).normal(size=(4, 2, 3, 5, 5))
    tiles = introspection.filter_tiles(weight)
    assert len(tiles) == 8 and tiles[0].shape == (5, 3 * 5 + 2)
    assert np.isnan(tiles[0][:, 5]).all(), "z-slices are separated by a gap"
    image = introspection.mosaic(tiles)
    assert np.isfinite(image).sum() == 8 * 3 * 25


def test_3d_filters_image_and_smoothing(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv3d(1, 3, (2, 4, 4)), torch.nn.Conv3d(3, 2, 1))
    path = introspection.plot_filters(model, tmp_path / "f.png")
    assert path.stat().st_size > 0
    assert introspection.smooth_filters(model) == (3, 1, 2, 4, 4)


def test_debug_batch_image_3d(tmp_path):
    data = np.random.default_rng(0).random((1, 1, 9, 20, 20)).astype(np.float32)
    labels = np.ones((1, 5, 12, 12), np.int16)
    image, label = introspection.example_images(data, labels)
    assert image.shape == label.shape == (20, 20)
    assert np.isnan(label[:4]).all() and (label[4:16, 4:16] == 1).all()
    introspection.plot_debug_batch(data, labels, tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 0


# -- a real run in a pseudo-terminal --------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_console_in_a_real_run(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    psutil = pytest.importorskip("psutil")
    config = write_config(
        tmp_path,
        "n_steps = 10**6\nmax_runtime = 600\nhistory_freq = [3]\nLR_decay = 1.0\n"
        "background_processes = 2\n",
    )
    child = pexpect.spawn(
        sys.executable, ["-m", "elektronn.train", str(config), "--gpu=false"],
        cwd=str(tmp_path), encoding="utf-8", timeout=40, dimensions=(50, 250),
    )  # fmt: skip
    try:
        child.expect(r"\d{5} NLLm=")
        child.sendintr()
        child.expect_exact(PROMPT)
        child.sendline("setlr 0.005")
        child.expect_exact("set to 0.005")
        child.expect_exact(PROMPT)
        child.sendline("config.n_steps")
        child.expect(r"\n1000000\r?\n")
        child.expect_exact(PROMPT)
        child.sendline("self.debugGetCNNBatch()")
        child.expect_exact("debugGetCNNBatch.png")
        child.expect_exact(PROMPT)
        child.sendintr()  # at the prompt: a hint, and no second console after 'q'
        child.expect_exact("type 'q' to continue")
        child.expect_exact(PROMPT)
        workers = psutil.Process(child.pid).children(recursive=True)
        assert len(workers) >= 2
        child.sendline("q")
        child.expect(r"\d{5} NLLm=[^\r\n]*LR=0\.00500,")
        child.sendintr()
        child.expect_exact(PROMPT)
        child.sendline("abort")
        child.expect("End of training")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    save_dir = tmp_path / "runs" / "tiny"
    assert (save_dir / "tiny_end.param").is_file()
    assert (save_dir / "debugGetCNNBatch.png").is_file()
    log = (save_dir / "tiny.log").read_text()  # commands typed and their answers
    assert f"{PROMPT}config.n_steps\n1000000\n" in log and "set to 0.005" in log
    assert f"{PROMPT}abort\n" in log and "End of training" in log
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert not [p for p in alive if _running(p, psutil)], "a batch worker outlived the trainer"


def _running(process, psutil):
    """Alive and not a zombie (an orphaned zombie is no process, only an exit status)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_status_line_without_history_says_nan(trainer):
    assert trainer.history.last("errors") is None
    assert "train=nan" in console.status_line(trainer)


def test_an_unknown_data_attribute_is_refused_listing_the_settable_names(trainer):
    batches = recording(trainer)
    out = drive(trainer, "data.wrap_on = False", "q")
    assert "no setting 'wrap_on'" in out and "upright_x" in out and "warp_on" in out
    assert batches.updates == [] and not hasattr(trainer.data, "wrap_on")


def test_data_warp_on_for_image_data_becomes_the_batch_setting(trainer):
    batches = recording(trainer)
    out = drive(trainer, "data.warp_on = True", "q")
    assert "applied as batch_kwargs['warp_on']" in out
    assert batches.batch_kwargs["warp_on"] is True and "warp_on" not in vars(trainer.data)


def test_a_setting_that_fails_in_one_batch_is_refused_before_it_is_confirmed(trainer):
    batches = recording(trainer)
    out = drive(trainer, "batch_kwargs['source'] = 'nowhere'", "q")
    assert "undone" in out and "Training batches from now on" not in out
    assert batches.updates == [] and batches.batch_kwargs["source"] == "train"


def test_status_line_fields_are_separated_by_comma_and_space(trainer):
    line = console.status_line(trainer)
    assert re.search(r"valid=[\d.na]+%, best=", line), line
    assert not re.search(r",\S", line.replace(",\n", ", ")), line


def test_the_log_has_each_prompt_once_when_output_goes_through_a_pipe(tmp_path, monkeypatch):
    """Under ``elektronn-train CONFIG | tee out.txt`` Python's ``input`` writes the prompt
    through ``sys.stdout``, which already copies it into ``<save_name>.log``."""
    import io

    from elektronn.streams import RunLog, SurvivingStream

    log = RunLog()
    log.start()
    log.open(tmp_path / "tiny.log", append=False)
    monkeypatch.setattr(console, "RUN_LOG", log)
    monkeypatch.setattr(sys, "stdin", io.StringIO("setlr 0.005\n"))
    monkeypatch.setattr(sys, "stdout", SurvivingStream(io.StringIO(), "stdout", None, log))
    line = console.read_line(input, "me@ELEKTRONN: ", print)
    log.close()
    assert line == "setlr 0.005"
    assert (tmp_path / "tiny.log").read_text() == "me@ELEKTRONN: setlr 0.005\n"
