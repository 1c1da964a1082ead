"""Kill a command at a named stage and reopen its final names (the fault-injection proof of issue 19).

A command runs as a user runs it (``python -m voca_addon …`` in its own process, bpy and TensorFlow blocked
for the core commands) with ``VOCA_FAULT=STAGE:NTH:SIGNAL`` (:mod:`voca_addon.core.faults`), into a fresh
folder that is empty or holds the files of a previous complete run (the ``--overwrite`` case). After the
kill every final name (every file of the folder whose name does not start with a dot) must hold

- the previous complete file, byte for byte, or
- the new complete file (the kill came after its rename): it opens, and its content is the content of an
  uninterrupted run (:func:`complete`), or
- nothing — only when there was no previous file (with one, the name is never left empty).

A SIGINT must end the run with status 130, ``error: interrupted`` as the last line, no traceback, and no
hidden file left (no temporary, no claim). After a SIGKILL the same command run again into the same folder
must succeed, write complete files and leave no hidden file (the killed run's temporaries and claims are
swept). :func:`discover` counts the hits of each stage in an uninterrupted run (``VOCA_FAULT_LOG``);
:func:`plan` picks the hits to kill at (1st, 2nd and last of each stage); :func:`sweep` runs kills in
parallel and returns one :class:`Outcome` each. Used by ``tests/core/test_fault_injection.py``,
``tests/blender/test_fault_injection_blender.py`` and ``tools/fault_sweep.py``.
"""
from __future__ import annotations

import collections
import concurrent.futures
import csv
import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BLOCKER = ("import builtins\n_real = builtins.__import__\n"
           "def _blocked(name, *a, **k):\n"
           "    if name.split('.')[0] in ('bpy', 'tensorflow', 'tf_keras', 'keras', 'mathutils', 'aud'):\n"
           "        raise ImportError('blocked for this test: ' + name)\n"
           "    return _real(name, *a, **k)\n"
           "builtins.__import__ = _blocked\n")
LAUNCH = "import runpy, sys; sys.argv = ['voca_addon'] + sys.argv[1:]; runpy.run_module('voca_addon', run_name='__main__')"
SAVE_DELAYS_S = (0.05, 0.1)  # s after a write hit: a SIGKILL then lands inside Blender's save of the .blend
                             # (measured at load 8: 0.05 s: 235 B of the 7 MB written, 0.1 s: 3.3 MB)
TIMEOUT_S = 600


@dataclasses.dataclass(frozen=True)
class Command:
    """A command line to kill: ``argv(out)`` gives its arguments writing into the folder ``out``."""
    name: str
    argv: Callable[[Path], List[str]]
    overwrite: Optional[str] = "--overwrite"     # the flag that replaces existing outputs (None: none has it)
    python: str = sys.executable
    blocked: bool = True                         # bpy / TensorFlow blocked (the core commands)
    env: Tuple[Tuple[str, str], ...] = ()        # more environment (the Blender commands' model cache)


@dataclasses.dataclass
class Outcome:
    """One kill: where, how, what was found."""
    command: str
    stage: str
    nth: int
    signal: str
    previous: bool
    hit: bool = False
    files_checked: int = 0
    problems: List[str] = dataclasses.field(default_factory=list)
    left: List[str] = dataclasses.field(default_factory=list)     # hidden files a SIGKILL left (swept next)
    late: bool = False                                            # a delayed signal came after the run's end
    seconds: float = 0.0


def run(cmd: Command, out: Path, fault: Optional[str] = None, log: Optional[Path] = None,
        overwrite: bool = False) -> subprocess.CompletedProcess:
    """Run ``cmd`` into ``out`` (``fault``: ``VOCA_FAULT``; ``log``: ``VOCA_FAULT_LOG``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOCA_FAULT")}
    env["PYTHONPATH"] = str(ROOT)
    env["VOCA_PHONE_CACHE"] = "0"           # every run passes the same stages: no phone track read back
    env.update(cmd.env)
    if fault:
        env["VOCA_FAULT"] = fault
    if log:
        env["VOCA_FAULT_LOG"] = str(log)
    args = [str(a) for a in cmd.argv(out)] + ([cmd.overwrite] if overwrite and cmd.overwrite else [])
    code = (BLOCKER if cmd.blocked else "") + LAUNCH
    return subprocess.run([cmd.python, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def finals(out: Path) -> Dict[str, Path]:
    """The files under their final names in ``out`` (relative name → path; hidden names are not final)."""
    found = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            found[str(rel)] = path
    return found


def hidden(out: Path) -> List[str]:
    """Hidden files left in ``out`` (temporaries, claims)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*"))


def discover(cmd: Command, work: Path) -> Tuple[Dict[str, int], Path]:
    """Hits per stage of an uninterrupted run, and the folder holding its complete outputs."""
    out, log = work / f"{cmd.name}-reference", work / f"{cmd.name}-hits.log"
    out.mkdir(parents=True)
    r = run(cmd, out, log=log)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd.name}: the uninterrupted run failed ({r.returncode}): {r.stderr[-2000:]}")
    counts = collections.Counter(log.read_text().split()) if log.exists() else collections.Counter()
    return dict(counts), out


def hits_to_kill(count: int) -> List[int]:
    """The 1st, 2nd and last hit of a stage that is passed ``count`` times."""
    return sorted({1, min(2, count), count})


def plan(counts: Dict[str, int], signals: Sequence[str] = ("KILL", "INT"),
         previous: Sequence[bool] = (False, True), delayed: Sequence[str] = ()) -> List[Tuple[str, int, str, bool]]:
    """Every (stage, hit, signal, with a previous output) of the full sweep; for the stages in ``delayed``
    also a SIGKILL each of :data:`SAVE_DELAYS_S` after each hit (``KILL+0.1``: inside the Blender save that
    follows a ``write`` hit; a run that ends before the timer is counted as late, not as hit)."""
    kills = [(stage, nth, sig, prev) for stage in sorted(counts) for nth in hits_to_kill(counts[stage])
             for sig in signals for prev in previous]
    return kills + [(stage, nth, f"KILL+{delay}", prev) for stage in delayed if stage in counts
                    for nth in range(1, counts[stage] + 1) for delay in SAVE_DELAYS_S for prev in previous]


# ------------------------------------------------------------------------------------ the checks

def _npz_equal(path: Path, ref: Path) -> Optional[str]:
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
    if bad is not None:
        return f"member {bad} is damaged"
    with np.load(path, allow_pickle=False) as a, np.load(ref, allow_pickle=False) as b:
        if sorted(a.files) != sorted(b.files):
            return f"members {sorted(a.files)} != {sorted(b.files)}"
        for name in b.files:
            if not np.array_equal(a[name], b[name]):
                return f"member {name} differs from an uninterrupted run's"
    return None


def _blend_whole(path: Path) -> Optional[str]:
    data = path.read_bytes()
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return None if len(data) > 64 else "too short"     # zstd: compressed by Blender (not used here)
    if not data.startswith(b"BLENDER"):
        return "no BLENDER header"
    if b"ENDB" not in data[-64:]:
        return "no ENDB block at its end (cut short)"
    return None


def _mp4_whole(path: Path) -> Optional[str]:
    data = path.read_bytes()
    if data[4:8] != b"ftyp":
        return "no ftyp box"
    return None if b"moov" in data else "no moov box (cut short)"


def complete(path: Path, ref: Path) -> Optional[str]:
    """None when ``path`` is a whole file like ``ref`` (an uninterrupted run's); else what is wrong."""
    try:
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return _npz_equal(path, ref)
        if suffix == ".blend":
            return _blend_whole(path)
        if suffix == ".mp4":
            return _mp4_whole(path)
        if suffix == ".json":
            a, b = json.loads(path.read_text("utf-8")), json.loads(ref.read_text("utf-8"))
            return None if type(a) is type(b) and (not isinstance(a, dict) or a.keys() == b.keys()) \
                else "another structure"
        if suffix == ".csv":            # rows may differ in number (the batch summary is kept after each clip)
            a, b = path.read_text("utf-8"), ref.read_text("utf-8")
            width = len(next(csv.reader(io.StringIO(b))))
            rows = list(csv.reader(io.StringIO(a)))
            return None if a.endswith("\n") and rows and all(len(r) == width for r in rows) else "cut short"
        if suffix in (".tsv", ".txt", ".textgrid"):
            a, b = path.read_text("utf-8"), ref.read_text("utf-8")
            return None if a.endswith("\n") and a.count("\n") == b.count("\n") else "cut short"
        return None if path.stat().st_size == ref.stat().st_size else "another size"
    except Exception as exc:        # noqa: BLE001 - any failure to open it is the finding
        return f"cannot be read ({type(exc).__name__}: {exc})"


def check_finals(out: Path, reference: Dict[str, Path], previous: Dict[str, bytes]) -> Tuple[int, List[str]]:
    """(files checked, problems): every final name holds the previous file, a complete new one or nothing."""
    problems, now = [], finals(out)
    for name in sorted(set(reference) | set(previous) | set(now)):
        path = now.get(name)
        if path is None:
            if name in previous:
                problems.append(f"{name}: gone (it held a previous complete file)")
            continue
        if name in previous and path.read_bytes() == previous[name]:
            continue
        if name.endswith("1") and name[:-1] in previous:          # X.blend1: the old X.blend, kept
            if path.read_bytes() != previous[name[:-1]]:
                problems.append(f"{name}: not the previous {name[:-1]}")
            continue
        if name not in reference:
            problems.append(f"{name}: a file no complete run writes")
            continue
        wrong = complete(path, reference[name])
        if wrong:
            problems.append(f"{name}: {wrong}")
    return len(now), problems


def _interrupted_cleanly(r: subprocess.CompletedProcess) -> List[str]:
    lines = r.stderr.strip().splitlines()
    problems = []
    if "Traceback" in r.stderr or "Exception ignored" in r.stderr:
        problems.append("a traceback on SIGINT: " + r.stderr[-600:])
    if not lines or lines[-1] != "error: interrupted":
        problems.append(f"last line {lines[-1:]!r}, not 'error: interrupted'")
    return problems


def kill_once(cmd: Command, work: Path, reference: Dict[str, Path], stage: str, nth: int, sig: str,
              with_previous: bool) -> Outcome:
    """Kill ``cmd`` at hit ``nth`` of ``stage`` with ``sig`` and check everything (module docstring)."""
    import time
    started = time.monotonic()
    outcome = Outcome(cmd.name, stage, nth, sig, with_previous)
    out = work / f"{cmd.name}-{stage}-{nth}-{sig}-{'prev' if with_previous else 'new'}"
    out.mkdir(parents=True)
    previous = {}
    if with_previous:
        for name, path in reference.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / name)
            previous[name] = path.read_bytes()
    base, _, delay = sig.partition("+")
    r = run(cmd, out, fault=f"{stage}:{nth}:{base}" + (f":{delay}" if delay else ""), overwrite=with_previous)
    outcome.hit = r.returncode == (130 if base == "INT" else -signal.SIGKILL)
    outcome.late = bool(delay) and r.returncode == 0        # the run ended before the timer: nothing to check
    if not outcome.hit and not outcome.late:
        outcome.problems.append(f"not hit: exit {r.returncode} ({r.stderr.strip()[-400:]})")
    checked, problems = check_finals(out, reference, previous)
    outcome.files_checked += checked
    outcome.problems += problems
    if base == "KILL":
        outcome.left = hidden(out)
    if base == "INT" and outcome.hit:
        outcome.problems += _interrupted_cleanly(r)
        left = hidden(out)
        if left:
            outcome.problems.append(f"left after SIGINT: {left}")
    if base == "KILL" and outcome.hit:                     # the next run into the same place
        again = run(cmd, out, overwrite=True)
        if again.returncode != 0:
            outcome.problems.append(f"the run after the kill failed ({again.returncode}): {again.stderr[-600:]}")
        else:
            now = finals(out)
            outcome.files_checked += len(now)
            for name, ref in reference.items():
                wrong = "missing" if name not in now else complete(now[name], ref)
                if wrong:
                    outcome.problems.append(f"after the next run, {name}: {wrong}")
            left = hidden(out)
            if left:
                outcome.problems.append(f"left after the next run: {left}")
    shutil.rmtree(out, ignore_errors=True)
    outcome.seconds = time.monotonic() - started
    return outcome


def sweep(cmd: Command, work: Path, reference_dir: Path, kills: Sequence[Tuple[str, int, str, bool]],
          workers: int = 2) -> List[Outcome]:
    """Run ``kills`` ((stage, nth, signal, with_previous) each) of ``cmd``, ``workers`` processes at a time."""
    reference = finals(reference_dir)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        jobs = [pool.submit(kill_once, cmd, work, reference, *k) for k in kills]
        return [job.result() for job in jobs]


def figures(outcomes: Sequence[Outcome]) -> dict:
    """Runs, stages hit per command, files checked, problems (the figures the issue asks for)."""
    stages: Dict[str, set] = collections.defaultdict(set)
    for o in outcomes:
        if o.hit:
            stages[o.command].add(o.stage)
    return dict(kills=len(outcomes), hit=sum(o.hit for o in outcomes), late=sum(o.late for o in outcomes),
                recovery_runs=sum(o.hit and o.signal.startswith("KILL") for o in outcomes),
                blend_saves_cut=sum(any(n.endswith(".blend@") for n in o.left) for o in outcomes
                                        if "+" in o.signal),
                stages={c: sorted(s) for c, s in stages.items()},
                files_checked=sum(o.files_checked for o in outcomes),
                lost=[f"{o.command} {o.stage}#{o.nth} SIG{o.signal} {'prev' if o.previous else 'new'}: {p}"
                      for o in outcomes for p in o.problems])


# ------------------------------------------------------------------------------------ the commands

RHUBARB_TSV = "0.00\tX\n0.40\tA\n0.52\tC\n1.11\tA\n1.18\tC\n1.44\tA\n1.54\tX\n"     # an alignment (Rhubarb TSV)


def core_inputs(shared_data: Path, voca_ckpt: Path, ds_pb: Path, work: Path) -> dict:
    """Inputs of the core commands: the test models, the FLAME template, real speech, a model cache shared
    by every run, an alignment file, and a batch INPUT folder of two VOCASET clips (links)."""
    work.mkdir(parents=True, exist_ok=True)
    align = work / "alignment.tsv"
    align.write_text(RHUBARB_TSV)
    clips = work / "clips"
    for wav in sorted((shared_data / "audio" / "vocaset").glob("*/sentence0*.wav"))[:2]:
        (clips / wav.parent.name).mkdir(parents=True, exist_ok=True)
        os.symlink(wav, clips / wav.parent.name / wav.name)
    cache = work / "model-cache"
    cache.mkdir(exist_ok=True)
    return dict(voca=voca_ckpt, ds=ds_pb, template=shared_data / "flame" / "FLAME_sample.ply",
                wav=shared_data / "audio" / "test_sentence.wav", cache=cache, align=align, clips=clips)


def core_commands(m: dict) -> List[Command]:
    """features, infer (with --phonemes: two outputs committed together), phonemes, batch (2 clips in 2
    groups, npz + csv, its manifest and summary)."""
    models = ["--voca", m["voca"], "--deepspeech", m["ds"], "--template", m["template"], "--cache", m["cache"]]
    return [
        Command("features", lambda out: ["features", m["wav"], "--deepspeech", m["ds"], "--cache", m["cache"],
                                         "--out", out / "features.npz"]),
        Command("infer", lambda out: ["infer", m["wav"], *models, "--alignment", m["align"],
                                      "--out", out / "anim.npz", "--phonemes", out / "anim.json"]),
        Command("phonemes", lambda out: ["phonemes", m["wav"], "--alignment", m["align"],
                                         "--out", out / "phones.TextGrid"]),
        Command("batch", lambda out: ["batch", m["clips"], "--out", out, "--batch-size", "1",
                                      "--format", "npz,csv", "--no-closures", *models]),
    ]
