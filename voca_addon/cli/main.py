"""The one parser of ``python -m voca_addon`` (and of ``blender -b -P voca_addon/headless.py --``), and ``main``.

Works with neither ``bpy`` nor ``tensorflow`` importable. Every refused input exits with status 2
and one line on stderr (``error: ...``), without a traceback. An unexpected error (a bug) exits with
status 3 and one line naming a log file that holds the traceback (:mod:`voca_addon.core.errorlog`);
Ctrl-C exits with 130 (:func:`.common.run_guarded`).

Each command is one module of this package (listed in :data:`COMMANDS`, in ``--help`` order) with
``add_parser(sub)``, which sets the parsed arguments' ``run``. Contract: stdlib only at import, so
``--help`` is instant; a command imports what it needs when it runs.
"""
from __future__ import annotations

import argparse
from typing import List, Optional

from . import (animate, bench, features, infer, models, phonemes, retarget, sequences, train)
from .batch import command as batch
from .common import run_guarded

COMMANDS = (features, infer, bench, train, batch, models, phonemes, animate, sequences, retarget)
PROG = "python -m voca_addon"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """Every command's sub-parser, each set up by its own module's ``add_parser``."""
    parser = argparse.ArgumentParser(prog=prog, description="VOCA: animate a 3D face from speech.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None, prog: str = PROG) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command under the guard; the exit status."""
    args = build_parser(prog).parse_args(argv)
    return run_guarded(lambda: args.run(args), f"{prog} {args.command}")
