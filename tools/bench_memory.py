"""Memory benchmark: peak resident memory and wall time of ``features``, ``infer``, ``animate`` and ``batch``
on long speech (default 1, 15 and 60 minutes), each command a fresh process as a user runs it.

Not a test (nothing is asserted): it prints a table and how flat memory is across lengths.
Development tool: needs the repository's ``.venv`` (numpy, bpy for ``animate``; TensorFlow only to
build the random-weight models once), and ``../shared/data`` (real VOCASET speech is concatenated into
a temporary WAV of each length). The models are the full-size random-weight DeepSpeech 0.1.0 graph
(``ds_full_pb``, 2048 units) and a random VOCA checkpoint in the official formats, from the test
fixture cache.

    nice -n 10 .venv/bin/python tools/bench_memory.py [--minutes 1,15,60] [--commands features,infer,animate]
                                                     [--width 2048] [--tree DIR]

``batch`` runs one clip of that length to its ``.npz`` with vertices (``batch-exact``: with
``--no-closures``); ``--tree`` runs the commands of another checkout (a ``git worktree`` of an earlier
commit) for before/after figures.

Peak resident memory is the command's ``ru_maxrss`` (``os.wait4`` in a small launcher process), so it
covers the whole process: Python, numpy and, for ``animate``, Blender.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def models(cache: Path, width: int = 2048) -> tuple:
    """(DeepSpeech .pb, VOCA prefix) from the test fixture cache (built with TensorFlow if missing)."""
    from tests.reference import tf_deepspeech, tf_voca
    return (tf_deepspeech.ensure_deepspeech_pb(cache, n_hidden=width, seed=0),
            tf_voca.ensure_voca_checkpoint(cache, seed=0))


def long_wav(minutes: float, folder: Path) -> Path:
    from tools.bench_engine import _concat_speech
    return _concat_speech(minutes * 60.0, folder / f"speech_{minutes:g}min.wav")


# A small launcher process starts each command and reports its rusage: Linux counts a child's resident
# memory from before its exec (the forked copy of the parent) in ru_maxrss, so the benchmark process
# itself (TensorFlow imported to build the models, the long WAV built in memory) must not be the parent.
LAUNCHER = """
import json, os, subprocess, sys
with open(sys.argv[1], "w") as err:
    child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err)
    _, status, usage = os.wait4(child.pid, 0)
print(json.dumps(dict(status=os.waitstatus_to_exitcode(status), maxrss_kb=usage.ru_maxrss,
                      cpu_s=usage.ru_utime + usage.ru_stime)))
"""


def measure(args: list, env: dict, tree: Path = ROOT) -> dict:
    """``python -m voca_addon ARGS`` → wall time, CPU time (user + system: on a shared machine the wall time
    measures the other load too), peak RSS (MB), exit status, last stderr lines."""
    with tempfile.NamedTemporaryFile("r", suffix=".log") as err:
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", LAUNCHER, err.name, sys.executable, "-m", "voca_addon",
                              *map(str, args)], cwd=tree, env=dict(env, PYTHONPATH=str(tree)),
                             capture_output=True, text=True)
        wall = time.perf_counter() - t0
        tail = err.read().strip().splitlines()[-3:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return dict(wall_s=wall, cpu_s=result["cpu_s"], peak_rss_mb=result["maxrss_kb"] / 1024.0,
                status=result["status"], stderr_tail=tail)


def command_args(command: str, wav: Path, pb: Path, prefix: Path, out_dir: Path) -> tuple:
    template = SHARED / "flame" / "FLAME_sample.ply"
    if command == "features":
        out = out_dir / "features.npz"
        return ["features", wav, "--deepspeech", pb, "--out", out], out
    if command == "infer":
        out = out_dir / "anim.npz"
        return ["infer", wav, "--deepspeech", pb, "--voca", prefix, "--template", template, "--out", out], out
    if command in ("batch", "batch-exact"):         # one clip, its .npz with vertices (the batch's writer)
        clips, out = out_dir / "clips", out_dir / "batch-out"
        clips.mkdir(exist_ok=True)
        (clips / wav.name).unlink(missing_ok=True)
        (clips / wav.name).symlink_to(wav)
        exact = ["--no-closures"] if command == "batch-exact" else []
        return ["batch", clips, "--out", out, "--format", "npz", "--deepspeech", pb, "--voca", prefix,
                "--template", template, *exact], out / f"{wav.stem}.npz"
    out = out_dir / "scene.blend"
    return ["animate", wav, "--deepspeech", pb, "--voca", prefix, "--template", template, "--out", out], out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", default="1,15,60")
    parser.add_argument("--commands", default="features,infer,animate")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here")
    parser.add_argument("--tree", metavar="DIR", default=str(ROOT), help="run the commands of this checkout "
                        "(e.g. a git worktree of an earlier commit, for before/after figures; default: this one)")
    parser.add_argument("--width", type=int, default=2048, help="DeepSpeech width (default 2048, full size; "
                        "64 runs the same code in minutes, to show how memory grows with the length alone)")
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        raise SystemExit(f"the benchmark needs ../shared/data ({SHARED})")
    pb, prefix = models(ROOT / ".cache" / "test-fixtures", args.width)
    work = Path(tempfile.mkdtemp(prefix="voca-bench-memory-"))
    try:
        _run(args, pb, prefix, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)             # WAVs, outputs, the model cache copy


def _run(args, pb: Path, prefix: Path, work: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), VOCA_CACHE_DIR=str(work / "model-cache"))
    rows = []
    warm = long_wav(0.1, work)                                  # parse the models into the cache once
    cmd, out = command_args("features", warm, pb, prefix, work)
    tree = Path(args.tree).resolve()
    measure(cmd, env, tree)
    out.unlink(missing_ok=True)
    for minutes in [float(m) for m in args.minutes.split(",")]:
        wav = long_wav(minutes, work)
        for command in args.commands.split(","):
            cmd, out = command_args(command, wav, pb, prefix, work)
            row = dict(minutes=minutes, command=command, **measure(cmd, env, tree))
            row["output_mb"] = out.stat().st_size / 2**20 if out.exists() else 0.0
            out.unlink(missing_ok=True)
            rows.append(row)
            print(f"{minutes:>5g} min  {command:<9} peak {row['peak_rss_mb']:7.0f} MB  wall {row['wall_s']:8.1f} s  "
                  f"output {row['output_mb']:8.1f} MB  exit {row['status']}", flush=True)
            if row["status"] != 0:
                print("   ", *row["stderr_tail"], sep="\n    ", flush=True)
            if args.json:                                    # after every row: a long run's partial figures
                Path(args.json).write_text(json.dumps(rows, indent=1))
        wav.unlink()
    _summary(rows)


def _summary(rows: list) -> None:
    print("\ncommand    peak RSS by length (MB)               growth from the shortest to the longest")
    for command in dict.fromkeys(r["command"] for r in rows):
        mine = [r for r in rows if r["command"] == command]
        peaks = "  ".join(f"{r['minutes']:g} min {r['peak_rss_mb']:.0f}" for r in mine)
        growth = mine[-1]["peak_rss_mb"] - mine[0]["peak_rss_mb"]
        span = mine[-1]["minutes"] - mine[0]["minutes"]
        per_min = f"{growth / span:+.1f} MB per minute of speech" if span else ""
        print(f"{command:<10} {peaks:<38} {growth:+.0f} MB ({per_min})")


if __name__ == "__main__":
    main()
