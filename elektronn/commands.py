"""What every command line shares: ``--version``, where the documentation is, and a
``did you mean`` for a misspelt option."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable, Sequence

from . import __version__

#: Installed with the package (a pip install has no docs/ folder), so the help points there.
DOCUMENTATION = (
    "Documentation: 'python -m elektronn.config.reference' prints every training option with "
    "its default and meaning; 'elektronn-train --new-config FILE' writes a commented starting "
    "config; 'python -m pydoc elektronn.<module>' shows a module's reference."
)


def closest_option(word: str, options: Iterable[str]) -> str | None:
    """The known option nearest to a misspelt ``word`` (``--dryrun`` → ``--dry-run``), if any
    is close enough; a value given with ``=`` is left out of the comparison."""
    if not word.startswith("-"):
        return None
    name = word.split("=", 1)[0]
    found = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return found[0] if found else None


def unrecognized_message(extras: Sequence[str], options: Iterable[str]) -> str:
    """argparse's ``unrecognized arguments`` message with a suggestion for each misspelt option."""
    options = list(options)
    hints = []
    for word in extras:
        match = closest_option(word, options)
        if match is not None:
            hints.append(f"{word.split('=', 1)[0]}: did you mean {match}?")
    message = f"unrecognized arguments: {' '.join(extras)}"
    return "; ".join([message, *hints])


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that suggests the nearest option for an unknown one.

    argparse's own ``suggest_on_error`` (Python 3.14) covers only misspelt choices and
    sub-commands, so unknown options are matched here with :mod:`difflib`.
    """

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unrecognized_message(extras, self._option_string_actions))
        return parsed


def command_parser(prog: str, description: str, **kwargs) -> argparse.ArgumentParser:
    """A command's parser with ``--version``, the documentation pointer in ``--help`` and a
    ``did you mean`` for misspelt options (and, where Python offers it, misspelt choices)."""
    if sys.version_info >= (3, 14):
        kwargs.setdefault("suggest_on_error", True)
    parser = CommandParser(prog=prog, description=description, epilog=DOCUMENTATION, **kwargs)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser
