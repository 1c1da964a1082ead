"""``python -m voca_addon ...``: the command line (see :mod:`voca_addon.cli`)."""
import sys

from .cli import main

sys.exit(main())
