"""What every command line shares: ``--version`` and a ``--help`` that points to the docs."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

import elektronn

#: The installed commands (pyproject.toml's [project.scripts]).
COMMANDS = {
    e.name: e for e in entry_points(group="console_scripts") if e.name.startswith("elektronn-")
}


def test_the_commands_are_installed():
    names = ("evaluate", "export", "labels", "predict", "segment", "train")
    assert sorted(COMMANDS) == [f"elektronn-{name}" for name in names]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_version_and_help_pointing_to_installed_docs(name, capsys):
    for flag in ("--version", "--help"):
        with pytest.raises(SystemExit) as exit_:
            COMMANDS[name].load()([flag])
        assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"{name} {elektronn.__version__}" in out
    assert "python -m elektronn.config.reference" in " ".join(out.split())


@pytest.mark.slow
def test_the_option_reference_named_in_the_help_prints():
    result = subprocess.run([sys.executable, "-m", "elektronn.config.reference"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0 and "n_steps" in result.stdout and "d_files" in result.stdout


@pytest.mark.parametrize(
    "name, typo, meant",
    [("elektronn-train", "--dryrun", "--dry-run"), ("elektronn-predict", "--gpus=0", "--gpu")],
)
def test_a_misspelt_option_is_answered_with_the_one_meant(name, typo, meant, capsys):
    with pytest.raises(SystemExit) as exit_:
        COMMANDS[name].load()(["config.py", typo])
    assert exit_.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"unrecognized arguments: {typo}" in err
    assert f"{typo.split('=')[0]}: did you mean {meant}?" in err, err
