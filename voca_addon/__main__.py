"""``python -m voca_addon ...``: the command line (see :mod:`voca_addon.cli.main`)."""
import sys

try:
    from .cli.main import main
    status = main()
except KeyboardInterrupt:           # Ctrl-C while the command line loads or parses: as in the command itself
    print("error: interrupted", file=sys.stderr)
    status = 130
if "bpy" in sys.modules:            # the bpy module's teardown crashes (4.2) or hangs (4.5) after classes were registered
    from .blender.compat import exit_now
    exit_now(status)
sys.exit(status)
