"""``bench``: speed and memory of the engine against TensorFlow, in one run — from a repository checkout.

The benchmark itself is development code and lives outside the extension, in the repository's
``tools/bench_engine.py`` (it needs TensorFlow, the test suite's reference and ``../shared``); this module
finds it beside the package and says so when the package runs from an installed extension.

Contract: stdlib at import.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from ..core.errors import InputError

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_engine.py"


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="speed and memory against TensorFlow (repository checkout only)")
    b.add_argument("--seconds", default="10,60", help="speech lengths to time (default 10,60)")
    b.add_argument("--no-tf", action="store_true", help="skip the TensorFlow reference timings")
    b.add_argument("--work", metavar="DIR", help="where to build the random-weight models")
    b.add_argument("--no-blender", action="store_true", help="skip the Blender writing figures")
    b.set_defaults(run=run)


def run(args) -> None:
    if not SCRIPT.is_file():
        raise InputError("bench is a development tool: run 'python -m voca_addon bench' from a clone of the "
                         f"project (it reads {SCRIPT.relative_to(SCRIPT.parents[1])}, which the extension "
                         "does not carry)")
    try:
        seconds = [float(s) for s in args.seconds.split(",")]
    except ValueError:
        raise InputError(f"--seconds '{args.seconds}': give lengths in seconds separated by commas, "
                         "e.g. 10,60") from None
    spec = importlib.util.spec_from_file_location("bench_engine", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(seconds, with_tf=not args.no_tf, work=args.work, blender=not args.no_blender)
