"""Entry of the GUI suite inside Blender: ``blender --python gui_driver.py -- CONFIG.json``.

Blender's event loop must keep running while the suite waits (for a redraw, a worker thread, a key
press), so each scenario is a generator run by a ``bpy.app.timers`` callback: it yields how many
seconds to wait before it is resumed, and the event loop runs in between — exactly as for a person
using the window. Scenarios (:mod:`gui_scenarios`) run in order; each one's findings go into
``report.json`` in the configured output folder (rewritten after every scenario, so a hang still leaves
what was found), and its stdout is framed by ``@@gui begin NAME`` / ``@@gui end NAME`` lines so the
pytest side can read the reports Blender printed during it. An exception in a scenario is recorded
(``error``: its traceback) and the next scenario runs; a scenario that overruns its time limit is
abandoned. Blender quits after the last one. Scenarios in ``gui_scenarios.ON_REQUEST`` run only when the
configuration names them (a window session of their own: quitting Blender mid-job ends it).

Contract: runs in Blender's Python (``bpy``); the pytest side (``conftest.py``) starts it and reads
``report.json``, the screenshots and stdout.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gui_scenarios  # noqa: E402  (needs the path above)

SCENARIO_LIMIT = 180.0          # s: a scenario running longer is abandoned (a loaded 2-core machine: ~50 s)
PREREQUISITES = {"window_setup", "install", "preferences", "voca_tab", "settings"}   # the rest needs them


class Runner:
    """Steps the scenarios' generators from a timer; writes the report after each scenario."""

    def __init__(self, config: dict):
        self.config, self.report = config, {"scenarios": {}, "order": []}
        wanted = config.get("scenarios")            # None: all; else these (the smoke subset, or a session
        self.queue = [s for s in gui_scenarios.SCENARIOS if wanted is None or s[0] in wanted] + \
            [s for s in gui_scenarios.ON_REQUEST if wanted is not None and s[0] in wanted]   # of its own)
        self.current, self.started, self.entry = None, 0.0, None

    def _begin(self) -> bool:
        if not self.queue:
            return False
        name, make = self.queue.pop(0)
        self.entry = {"started": time.time()}
        failed = [n for n in self.report["order"] if n in PREREQUISITES and "error" in self.report["scenarios"][n]]
        if failed:
            make = _skipped(failed[0])
        self.report["scenarios"][name] = self.entry
        self.report["order"].append(name)
        print(f"@@gui begin {name}", flush=True)
        self.current, self.started = (name, make(self.config, self.entry)), time.monotonic()
        return True

    def _end(self, error: str = None) -> None:
        name = self.current[0]
        if error:
            self.entry["error"] = error
            print(f"@@gui error {name}: {error}", flush=True)
        self.entry["seconds"] = round(time.time() - self.entry.pop("started"), 3)
        print(f"@@gui end {name}", flush=True)
        self.write()
        self.current = None

    def write(self) -> None:
        path = os.path.join(self.config["out"], "report.json")
        with open(path + ".tmp", "w") as handle:
            json.dump(self.report, handle, indent=1, default=str)
        os.replace(path + ".tmp", path)

    def tick(self):
        if self.current is None and not self._begin():
            self.report["finished"] = True
            self.write()
            bpy.ops.wm.quit_blender()
            return None
        if time.monotonic() - self.started > SCENARIO_LIMIT:
            self.current[1].close()
            self._end(f"timed out after {SCENARIO_LIMIT:g} s")
            return 0.05
        try:
            wait = next(self.current[1])
        except StopIteration:
            self._end()
            return 0.05
        except Exception:                   # noqa: BLE001  (recorded, then the next scenario runs)
            self._end(traceback.format_exc())
            return 0.05
        return max(0.01, float(wait))


def _skipped(prerequisite: str):
    def scenario(_config, _entry):
        raise RuntimeError(f"not run: the scenario {prerequisite} failed")
        yield  # noqa: unreachable (makes this a generator)
    return scenario


def main() -> None:
    args = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    with open(args[0]) as handle:
        config = json.load(handle)
    runner = Runner(config)
    runner.write()
    bpy.app.timers.register(runner.tick, first_interval=1.0, persistent=True)


main()
