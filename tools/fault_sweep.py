"""The full kill sweep of issue 19: every command killed at every stage, 1st / 2nd / last hit, SIGKILL and
SIGINT, into an empty folder and over a previous complete output; prints the figures.

Not a test (the tests keep one kill per stage per command: ``tests/core/test_fault_injection.py``,
``tests/blender/test_fault_injection_blender.py``); the checks are those of
:mod:`tests.core.fault_harness` (each final name holds the previous complete file, a complete new one, or
nothing where there was nothing; SIGINT: exit 130, one line, no temporary; SIGKILL: the next run into the
same place succeeds and leaves no leftover).

    nice -n 10 .venv/bin/python tools/fault_sweep.py [--blender] [--only infer,batch] [--workers 2]
        [--json figures.json]

``--blender`` sweeps the Blender commands (animate, import-sequence, retarget; needs bpy in this Python)
instead of the core ones. Models: the random-weight test models of the fixture cache
(``.cache/test-fixtures``, built by the test suite), the FLAME template and speech of ../shared/data.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import FIXTURE_CACHE, SHARED_DATA  # noqa: E402
from tests.core import fault_harness as fh  # noqa: E402
from tests.reference import cache_names  # noqa: E402


def _commands(blender: bool, work: Path):
    voca = cache_names.voca_checkpoint_prefix(FIXTURE_CACHE, seed=0)
    ds = cache_names.deepspeech_pb_path(FIXTURE_CACHE, 64, 0)
    inputs = fh.core_inputs(SHARED_DATA, voca, ds, work / "inputs")
    if not blender:
        return fh.core_commands(inputs)
    from tests.blender import fault_commands
    return fault_commands.blender_commands(inputs, SHARED_DATA, work / "inputs")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blender", action="store_true", help="the Blender commands instead of the core ones")
    p.add_argument("--only", help="comma-separated command names")
    p.add_argument("--workers", type=int, default=2, help="kills run at once (default 2)")
    p.add_argument("--json", help="write the figures and every outcome here")
    args = p.parse_args()
    started, cpu0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    outcomes, per_command = [], {}
    with tempfile.TemporaryDirectory(prefix="voca-fault-sweep-") as tmp:
        work = Path(tmp)
        for cmd in _commands(args.blender, work):
            if args.only and cmd.name not in args.only.split(","):
                continue
            t0 = time.monotonic()
            counts, reference = fh.discover(cmd, work)
            kills = fh.plan(counts, delayed=("write",) if args.blender else ())
            done = fh.sweep(cmd, work, reference, kills, args.workers)
            outcomes += done
            per_command[cmd.name] = dict(hits=counts, kills=len(done), seconds=round(time.monotonic() - t0, 1),
                                         lost=sum(bool(o.problems) for o in done))
            print(f"{cmd.name}: {len(done)} kills at {len(counts)} stages {counts}, "
                  f"{sum(o.files_checked for o in done)} files checked, "
                  f"{per_command[cmd.name]['lost']} with problems, {time.monotonic() - t0:.0f} s", flush=True)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = fh.figures(outcomes)
    result.update(per_command=per_command, wall_s=round(time.monotonic() - started, 1),
                  cpu_s=round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
                  load=os.getloadavg())
    print(f"kills {result['kills']} (hit {result['hit']}, late {result['late']}, .blend saves cut "
          f"{result['blend_saves_cut']}), runs after SIGKILL {result['recovery_runs']}, "
          f"files checked {result['files_checked']}, problems {len(result['lost'])}; "
          f"{result['wall_s']} s wall, {result['cpu_s']} s CPU, load {result['load'][0]:.2f}")
    for line in result["lost"]:
        print("  LOST " + line)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(result, outcomes=[o.__dict__ for o in outcomes]), indent=1))
    return 1 if result["lost"] or result["hit"] + result["late"] < result["kills"] else 0


if __name__ == "__main__":
    sys.exit(main())
