"""Phoneme stage benchmark: detection without a transcript against forced alignment with one, per clip.

For every clip of ../shared/data/audio (transcripts: tests/core/phonemes/transcripts.json) it runs forced
alignment of the transcript (the reference) and detection by each method ("words": recogniser + alignment
of its hypothesis; "phones": the phone recogniser), and prints per clip and pooled: bilabials (P, B, M)
found within 100 ms of an aligned one, the timing error (median, worst), false bilabials; the same for
F/V; the CPU and wall time per minute of audio of each pass; and how much a pure-Python thread keeps
running while the detector works in another thread (the GIL check).

Usage: ``python tools/bench_phonemes.py [--methods words,phones] [--no-gil]``
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voca_addon.core.phonemes import phones_for_audio            # noqa: E402
from voca_addon.core.phonemes.scoring import BILABIALS, EMPTY, LABIODENTALS, score  # noqa: E402
from voca_addon.core.speech.audio import load_audio              # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "audio"
TRANSCRIPTS = ROOT / "tests" / "core" / "phonemes" / "transcripts.json"


def _fmt(s) -> str:
    errs = sorted(s.errors)
    med = f"{1000 * statistics.median(errs):.0f}" if errs else "-"
    worst = f"{1000 * errs[-1]:.0f}" if errs else "-"
    return (f"{s.found}/{s.reference} found ({100 * s.found_rate:.0f} %), err med {med} ms worst {worst} ms, "
            f"false {s.false}/{s.detected} ({100 * s.false_rate:.0f} %)")


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def gil_check(path: Path, method: str, numpy_work: bool) -> float:
    """Rate of a loop (pure Python, or numpy matrix products like the engine's) while detection runs in
    another thread, relative to its rate alone. On a busy machine both rates include other load."""
    import numpy as np
    a = np.random.default_rng(0).standard_normal((256, 256))
    step = (lambda: a @ a) if numpy_work else (lambda: None)

    def rate(stop):
        n, start = 0, time.perf_counter()
        while not stop():
            step()
            n += 1
        return n / (time.perf_counter() - start)
    end = time.perf_counter() + 2.0
    alone = rate(lambda: time.perf_counter() > end)
    clip = load_audio(path)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (phones_for_audio(clip, method=method), done.set()))
    worker.start()
    beside = rate(done.is_set)
    worker.join()
    return beside / alone


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="words,phones")
    ap.add_argument("--no-gil", action="store_true")
    ap.add_argument("--gil-only", action="store_true")
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    clips = {} if args.gil_only else json.loads(TRANSCRIPTS.read_text())["clips"]
    phones_for_audio(load_audio(DATA / "test_sentence.wav"), "severe")     # load the models once (not timed)
    pooled = {(m, c): EMPTY for m in methods for c in ("PBM", "FV")}
    times = {m: [0.0, 0.0] for m in methods + ["aligned"]}
    total_s = 0.0
    for rel, text in clips.items():
        clip = load_audio(DATA / rel)
        total_s += clip.duration_s
        ref, w, c = _timed(lambda: phones_for_audio(clip, text))
        times["aligned"][0] += w
        times["aligned"][1] += c
        note = f" [{'; '.join(ref.warnings)}]" if ref.warnings else ""
        print(f"{rel} ({clip.duration_s:.2f} s, reference {ref.source}){note}")
        for m in methods:
            det, w, c = _timed(lambda: phones_for_audio(clip, method=m))
            times[m][0] += w
            times[m][1] += c
            for name, labels in (("PBM", BILABIALS), ("FV", LABIODENTALS)):
                s = score(det, ref, labels)
                pooled[m, name] = pooled[m, name].merged(s)
                print(f"  {m:6s} {name:3s} {_fmt(s)}")
    if clips:
        print(f"\nall {len(clips)} clips, {total_s:.1f} s of audio:")
        for m in methods:
            for name in ("PBM", "FV"):
                print(f"  {m:6s} {name:3s} {_fmt(pooled[m, name])}")
        for m, (w, c) in times.items():
            print(f"  time {m:7s}: {60 * w / total_s:.1f} s wall, {60 * c / total_s:.1f} s CPU per minute of audio")
    if not args.no_gil:
        for m in methods:
            for kind, numpy_work in (("a pure-Python loop", False), ("a numpy (256x256 matmul) loop", True)):
                keep = gil_check(DATA / "test_sentence.wav", m, numpy_work)
                print(f"  GIL: {kind} keeps {100 * keep:.0f} % of its speed while '{m}' detection runs in "
                      "another thread")


if __name__ == "__main__":
    main()
