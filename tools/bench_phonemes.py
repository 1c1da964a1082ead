"""Phoneme stage benchmark: detection without a transcript against forced alignment with one, per clip.

For every clip of ../shared/data/audio (transcripts: tests/core/phonemes/transcripts.json) it runs forced
alignment of the transcript (the reference) and detection by each method ("words": recogniser + alignment
of its hypothesis; "phones": the phone recogniser), and prints per clip and pooled: bilabials (P, B, M)
found within 100 ms of an aligned one, the timing error (median, worst), false bilabials; the same for
F/V; the CPU and wall time per minute of audio of each pass; and how much a pure-Python thread keeps
running while the detector works in another thread (the GIL check).

Each ``--config LABEL:option=value,…`` adds a "words" detection run whose full-vocabulary recogniser gets
those PocketSphinx options instead of the default ones (:data:`~voca_addon.core.phonemes.sphinx.RECOGNISER_CONFIG`;
``option=`` with nothing after it drops a default), e.g. ``--config fast:ds=2,fwdflat=no``: how each candidate
setting was measured (docs/phonemes.md, "Cost").

Usage: ``python tools/bench_phonemes.py [--methods words,phones] [--config LABEL:opt=val,…]… [--no-gil]``
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

from voca_addon.core.phonemes import phones_for_audio, sphinx    # noqa: E402
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


def _value(text: str):
    low = text.lower()
    if low in ("yes", "true", "no", "false"):
        return low in ("yes", "true")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_config(text: str):
    """"LABEL:opt=val,…" → (LABEL, the recogniser config: the default one updated; an empty value drops
    the option)."""
    label, _, opts = text.partition(":")
    config = dict(sphinx.RECOGNISER_CONFIG)
    for item in filter(None, opts.split(",")):
        key, _, val = item.partition("=")
        if val:
            config[key.strip()] = _value(val.strip())
        else:
            config.pop(key.strip(), None)
    return label, config


def _detect(clip, method: str, configs: dict):
    """Detection by ``method`` (a method name, or a --config label: "words" with that recogniser config)."""
    if method not in configs:
        return phones_for_audio(clip, method=method)
    saved = dict(sphinx.RECOGNISER_CONFIG)
    sphinx.RECOGNISER_CONFIG.clear()
    sphinx.RECOGNISER_CONFIG.update(configs[method])
    try:
        return phones_for_audio(clip, method="words")
    finally:
        sphinx.RECOGNISER_CONFIG.clear()
        sphinx.RECOGNISER_CONFIG.update(saved)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="words,phones")
    ap.add_argument("--config", action="append", default=[], metavar="LABEL:opt=val,…",
                    help="a 'words' run with these recogniser options (repeatable)")
    ap.add_argument("--no-gil", action="store_true")
    ap.add_argument("--gil-only", action="store_true")
    args = ap.parse_args(argv)
    configs = dict(parse_config(c) for c in args.config)
    methods = [m for m in args.methods.split(",") if m] + list(configs)
    for label, config in configs.items():
        print(f"config {label}: {config}")
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
            det, w, c = _timed(lambda: _detect(clip, m, configs))
            times[m][0] += w
            times[m][1] += c
            for name, labels in (("PBM", BILABIALS), ("FV", LABIODENTALS)):
                s = score(det, ref, labels)
                pooled[m, name] = pooled[m, name].merged(s)
                print(f"  {m:6s} {name:3s} {_fmt(s)}", flush=True)
    if clips:
        print(f"\nall {len(clips)} clips, {total_s:.1f} s of audio:")
        for m in methods:
            for name in ("PBM", "FV"):
                print(f"  {m:6s} {name:3s} {_fmt(pooled[m, name])}")
        for m, (w, c) in times.items():
            print(f"  time {m:7s}: {60 * w / total_s:.1f} s wall, {60 * c / total_s:.1f} s CPU per minute of audio")
    if not args.no_gil:
        for m in [m for m in methods if m not in configs]:
            for kind, numpy_work in (("a pure-Python loop", False), ("a numpy (256x256 matmul) loop", True)):
                keep = gil_check(DATA / "test_sentence.wav", m, numpy_work)
                print(f"  GIL: {kind} keeps {100 * keep:.0f} % of its speed while '{m}' detection runs in "
                      "another thread")


if __name__ == "__main__":
    main()
