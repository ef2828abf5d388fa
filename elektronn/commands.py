"""What every command line shares: ``--version`` and where the documentation is."""

from __future__ import annotations

import argparse

from . import __version__

#: Installed with the package (a pip install has no docs/ folder), so the help points there.
DOCUMENTATION = (
    "Documentation: 'python -m elektronn.config.reference' prints every training option with "
    "its default and meaning; 'elektronn-train --new-config FILE' writes a commented starting "
    "config; 'python -m pydoc elektronn.<module>' shows a module's reference."
)


def command_parser(prog: str, description: str, **kwargs) -> argparse.ArgumentParser:
    """A command's parser with ``--version`` and the documentation pointer in ``--help``."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=DOCUMENTATION,
                                     **kwargs)  # fmt: skip
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser
