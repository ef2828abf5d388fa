"""``elektronn-labels {boundaries,components,stack,ome-zarr} ...``: one sub-command per module
here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..commands import command_parser
from ..errors import UserError
from .boundaries import add_command as add_boundaries
from .components import add_command as add_components
from .omezarr import add_command as add_ome_zarr
from .stack import add_command as add_stack


def _parser() -> argparse.ArgumentParser:
    """Sub-commands ``boundaries``, ``components``, ``stack`` and ``ome-zarr``; each stores
    its runner as ``args.run``."""
    parser = command_parser(
        prog="elektronn-labels",
        description="Prepare training labels and data: ID labels to boundary maps, boundary "
        "maps to object IDs, 2D images to "
        "h5 cubes, h5 volumes to OME-Zarr images for viewers.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_boundaries(commands)
    add_components(commands)
    add_stack(commands)
    add_ome_zarr(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``elektronn-labels {boundaries,components,stack,ome-zarr} ...``; bad input: exit 2."""
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as exc:
        print(f"elektronn-labels: error: {exc}", file=sys.stderr)
        return 2
    return 0
