"""The command line inside Blender: ``blender -b [scene.blend] -P voca_addon/headless.py -- COMMAND …``.

The same commands, parser and code as ``python -m voca_addon COMMAND …`` (:mod:`voca_addon.cli`); the
arguments are those after ``--`` (Blender keeps its own before it). Also ``python voca_addon/headless.py --
COMMAND …`` with a Python that has the bpy module. Run as a script, the file puts its package's parent
folder on ``sys.path`` and imports the package from there, so it works from a repository checkout and
from an installed extension folder alike.

With the bpy *module* the process then leaves through :func:`~voca_addon.blender.compat.exit_now`, as
``python -m voca_addon`` does: its teardown at exit crashes (4.2) or hangs (4.5) once the add-on's classes
exist. In Blender itself that returns (Blender exits with ``--python-exit-code``).

Contract: a script entry only; imports the package's :mod:`voca_addon.cli.main` (stdlib at import).
"""
import importlib
import os
import sys

PROG = "blender -b -P headless.py --"


def script_args(argv):
    """The script's own arguments: those after the first ``--`` (Blender's form), else all but argv[0]."""
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def _bootstrap() -> int:
    package_dir = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(package_dir))
    package = os.path.basename(package_dir)
    status = importlib.import_module(package + ".cli.main").main(script_args(sys.argv), prog=PROG)
    if "bpy" in sys.modules:
        importlib.import_module(package + ".blender.compat").exit_now(status)
    return status


if __name__ == "__main__":
    sys.exit(_bootstrap())
