"""Benchmark: what lip closures cost ``animate`` (and ``infer``) on 60 s of speech — extra wall time and
extra peak memory — and the phoneme pass alone per minute of audio.

Not a test (nothing is asserted): it prints the figures beside the goals of issue 18 (extra wall time
≤ 15 %, extra peak memory ≤ 100 MB). Each command runs in a fresh process as a user runs it, with and
without ``--no-closures``, alternating, ``--repeats`` times (the fastest run of each kind is compared:
on a shared machine the slower runs measure the other load). The phone pass is detection from the audio
alone (no transcript: the concatenated sentences have none), the default of a user without a ``.txt``.

Development tool: the repository's ``.venv`` (bpy for ``animate``; TensorFlow only to build the
random-weight models once) and ``../shared/data`` (real VOCASET speech concatenated into one WAV). The
models are the full-size random-weight DeepSpeech 0.1.0 graph (2048 units) and a random VOCA checkpoint in
the official formats, from the test fixture cache (as :mod:`tools.bench_memory` builds them).

Memory: the phone pass runs in a child process beside the command, so the largest single process's peak
(``ru_maxrss``) does not show it; the extra peak memory is the difference of the peaks of the *sum* of the
resident memory of the command's process tree, sampled every 50 ms (a peak shorter than that can be missed).

    nice -n 10 .venv/bin/python tools/bench_articulation.py [--seconds 60] [--commands animate,infer]
                                                           [--repeats 2] [--json OUT.json]
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_memory import LAUNCHER, SHARED, command_args, models  # noqa: E402

SAMPLE_S = 0.05         # s between two samples of the process tree's resident memory


def _children() -> dict:
    """{parent pid: [child pids]} of every process now running (Linux /proc)."""
    tree: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def measure_tree(args: list, env: dict) -> dict:
    """``python -m voca_addon ARGS`` in a fresh process → wall, CPU (the command and its children, by
    ``wait4`` in a small launcher), the largest single process's peak (``ru_maxrss``) and the peak of the
    *sum* of the resident memory of the command's whole process tree (the command plus the phoneme child
    beside it), sampled every :data:`SAMPLE_S` from /proc; also the largest resident size seen of any
    process other than the command itself (the phoneme child)."""
    with tempfile.NamedTemporaryFile("r", suffix=".log") as err:
        t0 = time.perf_counter()
        launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, err.name, sys.executable, "-m", "voca_addon",
                                     *map(str, args)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        peak_sum = peak_other = 0.0
        while launcher.poll() is None:
            tree = _children()
            command = tree.get(launcher.pid, [])
            stack, total = list(command), 0.0
            while stack:
                pid = stack.pop()
                rss = _rss_mb(pid)
                total += rss
                if pid not in command:
                    peak_other = max(peak_other, rss)
                stack.extend(tree.get(pid, []))
            peak_sum = max(peak_sum, total)
            time.sleep(SAMPLE_S)
        wall = time.perf_counter() - t0
        out = launcher.stdout.read()
        tail = err.read().strip().splitlines()[-3:]
    result = json.loads(out.strip().splitlines()[-1])
    return dict(wall_s=wall, cpu_s=result["cpu_s"], peak_rss_mb=result["maxrss_kb"] / 1024.0,
                tree_peak_mb=peak_sum, child_peak_mb=peak_other, status=result["status"], stderr_tail=tail)

# The peak is the process's VmHWM (its own address space's high-water mark), not ru_maxrss: Linux counts the
# forked copy of the parent before exec in ru_maxrss, and this benchmark's process holds ~470 MB (TensorFlow
# imported to build the models) — which is what the "468 MB" of earlier runs of this pass measured.
PHONE_PASS = """
import json, sys, time
from voca_addon.core.phonemes import phones_for_audio
t0, c0 = time.perf_counter(), time.process_time()
track = phones_for_audio(sys.argv[1])
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
hwm = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(json.dumps(dict(wall_s=wall, cpu_s=cpu, phones=len(track.phones), peak_rss_mb=hwm / 1024)))
"""


def phone_pass(wav: Path, env: dict) -> dict:
    """The phoneme pass alone (detection) in a fresh process: wall time, phones found, peak memory."""
    r = subprocess.run([sys.executable, "-c", PHONE_PASS, str(wav)], cwd=ROOT, env=env, capture_output=True,
                       text=True)
    if r.returncode:
        raise SystemExit(f"the phone pass failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--commands", default="animate,infer")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--width", type=int, default=2048, help="DeepSpeech width (default 2048, full size)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        raise SystemExit(f"the benchmark needs ../shared/data ({SHARED})")
    pb, prefix = models(ROOT / ".cache" / "test-fixtures", args.width)
    work = Path(tempfile.mkdtemp(prefix="voca-bench-articulation-"))
    try:
        _run(args, pb, prefix, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args, pb: Path, prefix: Path, work: Path) -> None:
    from tools.bench_engine import _concat_speech
    # The phone-track cache off: every closures run detects the phones anew, as on audio never animated
    # before (a second run of one file reads its track back; measured once at the end as "kept track").
    env = dict(os.environ, PYTHONPATH=str(ROOT), VOCA_CACHE_DIR=str(work / "model-cache"), VOCA_PHONE_CACHE="0")
    wav = _concat_speech(args.seconds, work / "speech.wav")
    warm = _concat_speech(3.0, work / "warm.wav")
    cmd, out = command_args("infer", warm, pb, prefix, work)       # parse the models into the cache once
    measure_tree(cmd + ["--no-closures"], env)
    out.unlink(missing_ok=True)
    rows = []
    alone = min((phone_pass(wav, env) for _ in range(args.repeats)), key=lambda r: r["wall_s"])
    alone["load"] = os.getloadavg()[0]
    print(f"phone pass alone (detection): {alone['wall_s']:.1f} s wall, {alone['cpu_s']:.1f} s CPU for "
          f"{args.seconds:g} s of audio ({alone['cpu_s'] * 60 / args.seconds:.1f} s CPU per minute), {alone['phones']} phones, "
          f"peak {alone['peak_rss_mb']:.0f} MB (load average {alone['load']:.1f} on {os.cpu_count()} cores)", flush=True)
    for command in args.commands.split(","):
        runs = {"exact": [], "closures": []}
        for _ in range(args.repeats):
            for kind, extra in (("exact", ["--no-closures"]), ("closures", [])):
                cmd, out = command_args(command, wav, pb, prefix, work)
                row = dict(command=command, kind=kind, load=os.getloadavg()[0], **measure_tree(cmd + extra, env))
                out.unlink(missing_ok=True)
                if row["status"] != 0:
                    raise SystemExit(f"{command} {kind} failed:\n" + "\n".join(row["stderr_tail"]))
                runs[kind].append(row)
                rows.append(row)
                print(f"{command:<8} {kind:<9} wall {row['wall_s']:7.1f} s  cpu {row['cpu_s']:7.1f} s  "
                      f"peak {row['peak_rss_mb']:7.0f} MB (largest process), tree {row['tree_peak_mb']:7.0f} MB "
                      f"(sum, sampled), child {row['child_peak_mb']:5.0f} MB  load {row['load']:.1f} -> "
                      f"{os.getloadavg()[0]:.1f}", flush=True)
        for _ in range(2):          # the first run keeps the track, the second reads it back
            cmd, out = command_args(command, wav, pb, prefix, work)
            kept = dict(command=command, kind="kept track", load=os.getloadavg()[0],
                        **measure_tree(cmd, dict(env, VOCA_PHONE_CACHE="1")))
            out.unlink(missing_ok=True)
        rows.append(kept)
        print(f"{command:<8} closures, track kept from an earlier run: wall {kept['wall_s']:.1f} s  cpu "
              f"{kept['cpu_s']:.1f} s  tree {kept['tree_peak_mb']:.0f} MB", flush=True)
        exact = min(runs["exact"], key=lambda r: r["wall_s"])
        closed = min(runs["closures"], key=lambda r: r["wall_s"])
        extra_wall = closed["wall_s"] / exact["wall_s"] - 1
        extra_mem = (max(r["tree_peak_mb"] for r in runs["closures"])
                     - max(r["tree_peak_mb"] for r in runs["exact"]))
        cpu_exact = min(r["cpu_s"] for r in runs["exact"])
        cpu_closed = min(r["cpu_s"] for r in runs["closures"])
        print(f"{command}: closures add {100 * extra_wall:+.1f} % wall time (goal ≤ 15 %: "
              f"{closed['wall_s']:.1f} s against {exact['wall_s']:.1f} s), {100 * (cpu_closed / cpu_exact - 1):+.1f} % "
              f"CPU time ({cpu_closed:.1f} s against {cpu_exact:.1f} s) and {extra_mem:+.0f} MB peak memory of the "
              f"process tree (goal ≤ 100 MB; the phoneme child peaked at "
              f"{max(r['child_peak_mb'] for r in runs['closures']):.0f} MB)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(phone_pass=alone, seconds=args.seconds, cores=os.cpu_count(),
                                                   runs=rows, when=time.strftime("%Y-%m-%d %H:%M")), indent=1))


if __name__ == "__main__":
    main()
