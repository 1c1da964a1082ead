"""Batch benchmark: 16 clips of real speech, ``batch`` against one process per clip, in one run.

Not a test (nothing is asserted): it prints a table and writes it as JSON (``--json``).

1. *Throughput.* The 16 VOCASET recordings (../shared/data/audio/vocaset), every clip to a
   ``.npz`` with vertices, as a user runs them: (a) ``python -m voca_addon infer`` once per clip, one after
   the other; (b) the same, two processes at a time (2 cores); (c) ``python -m voca_addon batch`` in one
   process (all 16 clips share the recurrence); (d) ``batch --workers 2`` (two processes, 8 clips each).
   Wall time of the whole set, throughput ratio against (a), and each run's peak resident memory
   (``ru_maxrss`` from ``os.wait4``: the largest single process of the run, children included).
2. *Full-size equality.* The 16 clips' logits in one batch against one-clip runs (shortest, median and
   longest clip).
3. *The recurrence against the memory-bandwidth floor.* In this process, the LSTM recurrence of
   :mod:`voca_addon.core.speech.deepspeech_batch` on the first B clips for each batch size B: time per
   step with a GEMM whenever two or more clips run, one direction after the other (the state before
   this issue's last change), and as shipped (one matrix-vector product per clip below ``GEMM_MIN_CLIPS``,
   both directions at once with a single-threaded BLAS each; per step = wall / (2 · T_max)), the floor per
   step (reading ``K_h``, 64 MiB, at the bandwidth measured here by streaming a
   512 MiB array through a matrix-vector product and a copy; the better of the two), the share of the
   step time that floor accounts for (floor / step), and the time per clip-step (step / B).

Models: the full-size random-weight DeepSpeech 0.1.0 graph (2048 units, 491 MB; built once with
TensorFlow by ``tests/reference/tf_deepspeech.ensure_deepspeech_pb``) and a random VOCA checkpoint in the
official formats, both from the test fixture cache; a fresh model cache (the first load converts them,
then every process loads the cache).

    nice -n 10 .venv/bin/python tools/bench_batch.py [--batch-sizes 1,2,4,8,16] [--small] [--json out.json]

``--small`` uses the 64-unit test graph (a quick check that the script runs; figures meaningless).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FIXTURES = Path(os.environ.get("VOCA_TEST_CACHE", ROOT / ".cache" / "test-fixtures"))
sys.path.insert(0, str(ROOT))
STREAM_MIB = 512            # MiB streamed to measure the memory bandwidth
STREAM_REPEATS = 5


def models(small: bool) -> tuple:
    """(DeepSpeech .pb, VOCA prefix), built once with TensorFlow in a child process: this process stays
    small, so the children it starts do not inherit its pages (``ru_maxrss`` counts them until exec)."""
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from tests.reference import tf_deepspeech as D, tf_voca as V; "
            "print(json.dumps([str(D.ensure_deepspeech_pb(Path(sys.argv[2]), n_hidden=int(sys.argv[3]), seed=0)), "
            "str(V.ensure_voca_checkpoint(Path(sys.argv[2]), seed=0, meta_path=Path(sys.argv[4])))]))")
    meta = SHARED / "voca_official" / "gstep_52280.model.meta"
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(FIXTURES), "64" if small else "2048",
                          str(meta)], capture_output=True, text=True, check=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


def timed(commands, parallel: int = 1) -> dict:
    """Run the commands ``parallel`` at a time; wall seconds and the largest ``ru_maxrss`` (MB)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    pending, running, peak = list(commands), {}, 0.0
    load = os.getloadavg()[0]
    started = time.perf_counter()
    while pending or running:
        while pending and len(running) < parallel:
            cmd = pending.pop(0)
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            running[proc.pid] = proc
        pid, status, usage = os.wait4(-1, 0)
        proc = running.pop(pid, None)
        if proc is None:
            continue
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(map(str, proc.args[:4]))} failed:\n{proc.stderr.read().decode()[-2000:]}")
        proc.returncode = 0
        peak = max(peak, usage.ru_maxrss / 1024.0)
    return dict(wall_s=time.perf_counter() - started, peak_rss_mb=peak, load_before=load,
                load_after=os.getloadavg()[0])


def throughput(clips, pb, prefix, template, work: Path) -> dict:
    py = [sys.executable, "-m", "voca_addon"]
    common = ["--deepspeech", pb, "--voca", prefix, "--template", template, "--cache", str(work / "cache")]
    timed([py + ["features", str(clips[0]), "--deepspeech", pb, "--cache", str(work / "cache"),
                 "--out", str(work / "warm.npz")]])                               # converts the model once
    infer = lambda tag: [py + ["infer", str(c), *common, "--out", str(work / f"{tag}_{k}.npz")]
                         for k, c in enumerate(clips)]
    folder = work / "clips"
    folder.mkdir()
    for k, c in enumerate(clips):
        os.symlink(c, folder / f"clip{k:02d}.wav")
    runs = {"one process per clip, sequential": timed(infer("seq")),
            "one process per clip, 2 at a time": timed(infer("par"), parallel=2),
            "batch, 1 process (16 clips together)": timed(
                [py + ["batch", str(folder), "--out", str(work / "b1"), "--batch-size", "16", *common]]),
            "batch --workers 2 (8 + 8 clips)": timed(
                [py + ["batch", str(folder), "--out", str(work / "b2"), "--workers", "2", *common]])}
    base = runs["one process per clip, sequential"]["wall_s"]
    for r in runs.values():
        r["clips_per_s"] = len(clips) / r["wall_s"]
        r["ratio"] = base / r["wall_s"]
    return runs


def bandwidth_gbs() -> dict:
    """Streaming bandwidth (GB/s) of this machine now: a matrix-vector product and a copy of 512 MiB."""
    a = np.random.default_rng(0).standard_normal((STREAM_MIB * 2**20 // 4 // 4096, 4096)).astype(np.float32)
    v, out = np.ones(4096, np.float32), np.empty_like(a)
    gemv, copy = [], []
    for _ in range(STREAM_REPEATS):
        t = time.perf_counter()
        a @ v
        gemv.append(time.perf_counter() - t)
        t = time.perf_counter()
        np.copyto(out, a)
        copy.append(time.perf_counter() - t)
    return dict(gemv=a.nbytes / min(gemv) / 1e9, copy=2 * a.nbytes / min(copy) / 1e9)


def recurrence(clips, pb, batch_sizes, work: Path) -> list:
    from voca_addon.core.models import modelfiles
    from concurrent.futures import ThreadPoolExecutor
    from threadpoolctl import threadpool_limits
    from voca_addon.core.speech import audio, deepspeech, deepspeech_batch as db, features
    model = modelfiles.load_deepspeech(pb, work / "cache")
    inputs = [features.deepspeech_input(audio.prepare_for_deepspeech(audio.load_audio(c))) for c in clips]
    bw = bandwidth_gbs()
    shipped = db.GEMM_MIN_CLIPS
    together = db.logits_batch(model, inputs)                 # all 16: each clip against its own run
    order = np.argsort([len(x) for x in inputs])
    check = {int(k): float(np.abs(together[k] - deepspeech.logits(model, inputs[k])).max()
                           / np.abs(deepspeech.logits(model, inputs[k])).max())
             for k in (order[0], order[len(order) // 2], order[-1])}
    rows = []
    for b in batch_sizes:
        group = inputs[:b]
        plan = db.Schedule([len(x) for x in group])
        l3 = [deepspeech._dense_123(model, x) for x in group]
        row = dict(batch=b, steps=2 * plan.t_max, clip_steps=int(2 * plan.lengths.sum()))
        z_in = {d: db._gate_inputs(model, d, l3) for d in db.DIRECTIONS}
        for label, gemm_min, parallel in (("gemm", 2, False), ("chosen", db.GEMM_MIN_CLIPS, True)):
            db.GEMM_MIN_CLIPS = gemm_min
            try:
                t = time.perf_counter()
                if parallel and b > 1:               # as logits_batch: both directions at once, 1 BLAS thread each
                    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(2) as pool:
                        list(pool.map(lambda d: db._recurrence(model, d, z_in[d], plan), db.DIRECTIONS))
                else:                                # one direction after the other, OpenBLAS's own threads
                    for d in db.DIRECTIONS:
                        db._recurrence(model, d, z_in[d], plan)
                seconds = time.perf_counter() - t
            finally:
                db.GEMM_MIN_CLIPS = shipped
            row[f"{label}_step_ms"] = 1e3 * seconds / row["steps"]
            row[f"{label}_clip_step_ms"] = 1e3 * seconds / row["clip_steps"]
        kernel = model.lstm("fw")[1].nbytes
        row["floor_ms"] = 1e3 * kernel / (max(bw.values()) * 1e9)
        row["floor_share"] = row["floor_ms"] / row["chosen_step_ms"]
        rows.append(row)
    return [dict(bandwidth_gbs=bw, kernel_mib=kernel / 2**20, logits_rel_diff=check)] + rows


def report(runs: dict, rec: list, durations) -> None:
    print(f"\nThroughput, {len(durations)} real clips ({min(durations):.1f}–{max(durations):.1f} s, "
          f"{sum(durations):.0f} s of speech in all) → .npz with vertices:")
    for label, r in runs.items():
        print(f"  {label:<40}{r['wall_s']:8.1f} s  {r['clips_per_s']:5.2f} clips/s  ×{r['ratio']:.2f}  "
              f"peak {r['peak_rss_mb']:6.0f} MB  load {r['load_before']:.1f} → {r['load_after']:.1f}")
    head, rows = rec[0], rec[1:]
    bw = head["bandwidth_gbs"]
    print(f"\nLSTM recurrence (K_h {head['kernel_mib']:.0f} MiB per step and direction); bandwidth here "
          f"{bw['gemv']:.1f} GB/s (matrix-vector), {bw['copy']:.1f} GB/s (copy):")
    worst = max(head["logits_rel_diff"].values())
    print(f"  batch of 16 vs one-clip runs (shortest, median, longest clip): max |Δlogits| / max |logits| "
          f"= {worst:.2g}")
    print("  batch  steps  ms/step (GEMM from 2 clips, in turn)  ms/step (as shipped)  floor ms/step  floor share  "
          "ms per clip-step")
    for r in rows:
        print(f"  {r['batch']:5d}  {r['steps']:5d}  {r['gemm_step_ms']:33.2f}  {r['chosen_step_ms']:19.2f}  "
              f"{r['floor_ms']:13.2f}  {100 * r['floor_share']:10.0f}%  {r['chosen_clip_step_ms']:16.2f}")
    print(f"  load average at the end: {os.getloadavg()[0]:.2f}")

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", default="1,2,4,8,16")
    p.add_argument("--small", action="store_true", help="the 64-unit test graph (checks the script only)")
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = p.parse_args()
    clips = sorted((SHARED / "audio" / "vocaset").glob("*/sentence0*.wav"))
    if len(clips) != 16:
        raise SystemExit(f"expected the 16 VOCASET clips in {SHARED / 'audio' / 'vocaset'}, found {len(clips)}")
    pb, prefix = models(args.small)
    template = str(SHARED / "flame" / "FLAME_sample.ply")
    with tempfile.TemporaryDirectory(prefix="voca-bench-batch-") as tmp:
        work = Path(tmp)
        runs = throughput(clips, pb, prefix, template, work)
        rec = recurrence(clips, pb, [int(b) for b in args.batch_sizes.split(",")], work)
    from voca_addon.core.speech import audio
    durations = [audio.load_audio(c).duration_s for c in clips]
    report(runs, rec, durations)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(throughput=runs, recurrence=rec, durations_s=durations),
                                              indent=1))


if __name__ == "__main__":
    main()
