"""``elektronn-export MODEL OUT.zip``: a trained img-img net as a bioimage.io model package.

The package is built with ``bioimageio.spec`` and, unless ``--no-test``, tested with
``bioimageio.core`` (every file is inside the zip, so the test needs no network). See
:mod:`elektronn.export.package` for its contents.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from ..commands import command_parser
from ..errors import UserError
from ..net.paramfile import build_model_from_params, load_params
from ..predict.settings import find_param_file
from ..predict.volume import only_dataset, split_spec
from .convert import ExportError, check_exportable
from .package import DEFAULT_LICENSE, ExportOptions, export_package, run_bioimageio_test

if TYPE_CHECKING:
    from pydantic import ValidationError


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        prog="elektronn-export",
        description="Export a trained img-img net as a bioimage.io model package (format "
        "0.5: the dense net with MFP folded in as state dict, ONNX and TorchScript).",
    )
    p.add_argument("model", help="a training's save directory, or a parameter file (.param)")
    p.add_argument("output", help="the package to write, OUT.zip")
    p.add_argument(
        "--sample",
        help="FILE.h5[:KEY], raw image in user order (x, y[, z]) for the test tensors and the "
        "cover; default: the training's preview_data_path, else its first data file",
    )
    p.add_argument("--name", help="model name (default: 'elektronn <save_name>')")
    p.add_argument(
        "--description",
        default="",
        help="what the model segments in which images at what resolution (default: said from "
        "--content, --modality, --voxel-size and the training's target)",
    )
    p.add_argument("--content", default="", help="what is segmented, e.g. 'cell membranes'")
    p.add_argument(
        "--modality", default="electron microscopy", help="the kind of images (also a tag)"
    )
    p.add_argument("--voxel-size", help="X,Y[,Z] voxel size of the training images (user order)")
    p.add_argument("--unit", default="nanometer", help="unit of --voxel-size")
    p.add_argument("--tag", action="append", default=[], help="an extra tag (repeatable)")
    p.add_argument(
        "--maintainer", action="append", default=[], help="GitHub user name (repeatable)"
    )
    p.add_argument("--author", action="append", help="author name (repeatable; default: you)")
    p.add_argument("--license", default=DEFAULT_LICENSE, help="SPDX licence identifier")
    p.add_argument(
        "--cite",
        action="append",
        metavar="TEXT=URL_OR_DOI",
        help="citation (repeatable; default: Max Fragment Pooling and ELEKTRONN)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT.zip")
    p.add_argument("--no-test", action="store_true", help="skip the bioimageio.core test")
    return p


def parse_citations(entries: list[str] | None) -> tuple[tuple[str, str], ...] | None:
    """``TEXT=REF`` pairs, or None for the defaults."""
    if not entries:
        return None
    pairs = []
    for entry in entries:
        text, sep, ref = entry.rpartition("=")
        if not (sep and text.strip() and ref.strip()):
            raise ExportError(
                f"--cite {entry!r} must be TEXT=URL_OR_DOI, e.g. "
                f"'My paper=https://doi.org/...' or 'My paper=10.1234/abcd'."
            )
        pairs.append((text.strip(), ref.strip()))
    return tuple(pairs)


def parse_voxel_size(text: str | None, n_dim: int) -> tuple[float, ...] | None:
    """``--voxel-size X,Y[,Z]``: one positive number per spatial axis of the net."""
    if text is None:
        return None
    try:
        sizes = tuple(float(v) for v in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != n_dim or not all(v > 0 for v in sizes):
        raise ExportError(
            f"--voxel-size {text!r} must be {n_dim} positive numbers, the voxel size of the "
            f"training images along {', '.join('xyz'[:n_dim])} (user order), e.g. "
            f"{'4,4,50' if n_dim == 3 else '4,4'}."
        )
    return sizes


def default_sample(config: dict[str, Any]) -> str:
    """The training's preview file, else its first image file, as FILE[:KEY]."""
    preview = config.get("preview_data_path")
    if preview and Path(preview).is_file():
        return str(preview)
    d_files, folder = config.get("d_files") or [], config.get("data_path")
    if d_files and folder and (Path(folder) / d_files[0][0]).is_file():
        return f"{Path(folder) / d_files[0][0]}:{d_files[0][1]}"
    raise ExportError(
        "No sample image for the test tensors: the parameter file names no existing "
        "preview_data_path or data file. Give one with --sample FILE.h5:KEY (raw, user order)."
    )


def read_sample(spec: str) -> np.ndarray:
    """The whole dataset of ``FILE.h5[:KEY]`` (the only dataset when KEY is left out)."""
    path, key = split_spec(spec, None)
    try:
        with h5py.File(path, "r") as f:
            key = key or only_dataset(f)
            if key is None or not isinstance(f.get(key), h5py.Dataset):
                keys = ", ".join(map(repr, f.keys())) or "none"
                raise ExportError(f"--sample: '{path}' has no dataset {key!r}; keys: {keys}.")
            return np.asarray(f[key])
    except OSError as exc:
        raise ExportError(f"--sample: '{path}' cannot be read as HDF5: {exc}.") from None


def validation_message(exc: ValidationError) -> str:
    """The first pydantic error of a rejected description, as 'field: message'."""
    first = exc.errors()[0]
    return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"


def run(args: argparse.Namespace) -> Path:
    """Export (and test) the package; returns its path."""
    from pydantic import ValidationError  # bioimageio.spec's own dependency

    out = Path(args.output).expanduser()
    if out.suffix.lower() != ".zip":
        raise ExportError(f"OUTPUT '{out}' must end in .zip (a bioimage.io package).")
    if out.exists() and not args.overwrite:
        raise ExportError(f"The output '{out}' exists; use --overwrite to replace it.")
    param_file = find_param_file(args.model)
    params = load_params(param_file)
    model = build_model_from_params(param_file)
    check_exportable(model.spec)
    config = params.get("config") or {}
    sample = read_sample(args.sample or default_sample(config))
    options = ExportOptions(
        name=args.name or f"elektronn {config.get('save_name') or param_file.stem}",
        authors=args.author or [getpass.getuser()],
        license=args.license,
        description=args.description,
        tags=args.tag,
        content=args.content,
        modality=args.modality,
        voxel_size=parse_voxel_size(args.voxel_size, model.n_dim),
        unit=args.unit,
        maintainers=args.maintainer,
    )
    citations = parse_citations(args.cite)
    if citations:
        options.citations = citations
    with tempfile.TemporaryDirectory(prefix="elektronn-export-") as staging:
        try:
            export_package(model, params, param_file, sample, out, options, Path(staging))
        except ValidationError as exc:  # a field bioimageio.spec rejects
            raise ExportError(
                f"bioimageio.spec rejects the package: {validation_message(exc)}"
            ) from None
    return out


def main(argv: list[str] | None = None) -> int:
    """``elektronn-export``; returns the exit code (2 for bad input, with one paragraph)."""
    args = parser().parse_args(argv)
    try:
        out = run(args)
    except UserError as exc:
        print(f"elektronn-export: error: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {out}")
    if args.no_test:
        return 0
    summary = run_bioimageio_test(out)
    print(f"bioimageio.core test: {summary.status}")
    if summary.status != "passed":
        summary.display()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
