"""Benchmark: a transcript of long audio aligned piece by piece (core/phonemes/longalign.py, issue 18).

Not a test (nothing is asserted). For each length, the 16 VOCASET sentences of ``../shared/data/audio``
are concatenated (repeated as needed, 65 s per round) with their transcripts joined; ``phones_for_audio``
runs in a fresh process and reports its peak RSS (``ru_maxrss``), CPU and wall time, and how its P/B/M
and F/V and its words' starts match each sentence force-aligned alone (shifted by its offset; the reference alignments run in
the parent, so they do not count in the child's peak).

    nice -n 10 .venv/bin/python tools/bench_long_transcript.py [--rounds 1,5]
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voca_addon.core.phonemes import Phone, phones_for_audio  # noqa: E402
from voca_addon.core.phonemes.scoring import BILABIALS, LABIODENTALS, score, word_starts  # noqa: E402
from voca_addon.core.speech.audio import Audio, load_audio, select_channel  # noqa: E402

AUDIO = ROOT / ".." / "shared" / "data" / "audio"
CLIPS = json.loads((ROOT / "tests" / "core" / "phonemes" / "transcripts.json").read_text())["clips"]
SENTENCES = sorted(rel for rel in CLIPS if rel.startswith("vocaset/"))


def child(path: str) -> None:
    """Runs in the fresh process: align the clip in ``path`` (pickled Audio, text); print JSON."""
    with open(path, "rb") as f:
        audio, text = pickle.load(f)
    wall, cpu = time.time(), time.process_time()
    track = phones_for_audio(audio, text)
    out = dict(wall=time.time() - wall, cpu=time.process_time() - cpu,
               peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, source=track.source,
               warnings=list(track.warnings), phones=[(p.phone, p.start, p.end, p.word) for p in track.phones])
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", default="1,5", help="how many times the 16 sentences repeat, per run")
    args = parser.parse_args()
    own, parts, rate = {}, {}, None
    for rel in SENTENCES:
        audio = load_audio(AUDIO / rel)
        rate = rate or audio.rate
        own[rel] = phones_for_audio(audio, CLIPS[rel]).phones
        parts[rel] = select_channel(audio, 0).samples
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| length | peak RSS | CPU | wall | P/B/M found, false | F/V found, false | words > 100 ms off | warnings |")
    print("|---|---|---|---|---|---|---|---|")
    for rounds in [int(r) for r in args.rounds.split(",")]:
        samples, reference, t = [], [], 0.0
        for _ in range(rounds):
            for rel in SENTENCES:
                reference += [Phone(p.phone, t + p.start, t + p.end, p.word) for p in own[rel]]
                samples.append(parts[rel])
                t += len(parts[rel]) / rate
        text = " ".join(CLIPS[rel] for rel in SENTENCES * rounds)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "clip.pkl")
            with open(path, "wb") as f:
                pickle.dump((Audio(np.concatenate(samples), rate), text), f)
            run = subprocess.run([sys.executable, __file__, "--child", path], capture_output=True, text=True,
                                 check=True)
        out = json.loads(run.stdout.strip().splitlines()[-1])
        track = [Phone(*p) for p in out["phones"]]
        b, f = score(track, reference, BILABIALS), score(track, reference, LABIODENTALS)
        worst = max(b.errors, default=0.0) * 1e3
        said, got = word_starts(reference), word_starts(track)
        off = sum(abs(s1 - s0) > 0.1 for (_, s0), (_, s1) in zip(said, got)) if len(said) == len(got) else None
        print(f"| {t:.0f} s | {out['peak_mb']:.0f} MB | {out['cpu']:.1f} s | {out['wall']:.1f} s | "
              f"{b.found}/{b.reference}, {b.false}/{b.detected} (worst {worst:.0f} ms) | {f.found}/{f.reference}, "
              f"{f.false}/{f.detected} | {'word count differs' if off is None else f'{off}/{len(said)}'} | "
              f"{len(out['warnings'])} ({out['source']}) |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
