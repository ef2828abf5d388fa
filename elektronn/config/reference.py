"""Generate the user-defaults template and the option reference from the options table.

``python -m elektronn.config.reference --write`` rewrites ``examples/config_template.py``
and ``docs/options.md``; a test fails when the committed files drift from the table.
"""

from __future__ import annotations

import argparse
import pprint
from pathlib import Path

from .options import GROUPS, OPTIONS, Option

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "elektronn" / "examples" / "config_template.py"
OPTIONS_DOC_PATH = ROOT / "docs" / "options.md"

_MODE_MARK = {"!": "(*)", "$": "($)", "": ""}


def _python_literal(value) -> str:
    return pprint.pformat(value, width=70, sort_dicts=False)


def explanation(option: Option) -> str:
    """The option's doc, with its allowed values where the table declares them."""
    if not option.choices:
        return option.doc
    among = "Any of" if option.types == ("list",) else "One of"  # a list of choices
    return f"{option.doc} {among}: {', '.join(map(repr, option.choices))}."


def render_template() -> str:
    """The ``~/.elektronn.config`` template: every option at its master default, by group."""
    lines = [
        '"""elektronn user defaults: copy to ~/.elektronn.config and edit.',
        "",
        "Every option is listed at its master default. Values set here override the master",
        "defaults for all your trainings; a training config overrides both. (*) marks options",
        "to set in every training config, ($) options needed only in special cases.",
        "Generated from elektronn/config/options.py - do not edit by hand.",
        '"""',
    ]
    for group in GROUPS:
        lines += ["", f"# --- {group} ---"]
        for o in (o for o in OPTIONS if o.group == group):
            mark = _MODE_MARK[o.mode]
            lines.append(f"# {mark + ' ' if mark else ''}{explanation(o)}")
            lines.append(f"{o.name} = {_python_literal(o.default)}")
    return "\n".join(lines) + "\n"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_options_markdown() -> str:
    """The option reference page: one table per group, as in the specification."""
    lines = [
        "# Configuration options",
        "",
        "Generated from `elektronn/config/options.py` (the single source of truth) by",
        "`python -m elektronn.config.reference --write`. Mode `!`: set it for every training;",
        "`$`: only needed in special cases; empty: the default is a good start.",
        "",
        "Precedence: master defaults < `~/.elektronn.config` (or `$ELEKTRONN_USER_CONFIG`) <",
        "the training config file < `elektronn-train ... --set NAME=VALUE`.",
    ]
    for group in GROUPS:
        lines += ["", f"## {group}", "", "| Name | Mode | Type | Default | Explanation |"]
        lines.append("|---|---|---|---|---|")
        for o in (o for o in OPTIONS if o.group == group):
            default = _markdown_cell(repr(o.default))
            types = " or ".join(o.types)
            lines.append(
                f"| `{o.name}` | {o.mode} | {types} | `{default}` | "
                f"{_markdown_cell(explanation(o))} |"
            )
    return "\n".join(lines) + "\n"


GENERATED = {TEMPLATE_PATH: render_template, OPTIONS_DOC_PATH: render_options_markdown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the generated files")
    args = parser.parse_args()
    for path, render in GENERATED.items():
        if args.write:
            path.write_text(render())
            print(f"wrote {path}")
        else:
            print(render())


if __name__ == "__main__":
    main()
