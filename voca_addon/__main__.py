"""``python -m voca_addon ...``: the command line (see :mod:`voca_addon.cli`)."""
import sys

from .cli import main

status = main()
if "bpy" in sys.modules:            # the bpy 4.2 module crashes at exit after an exporter registered
    from .blender.compat import exit_now
    exit_now(status)
sys.exit(status)
