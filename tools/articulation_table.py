"""Figures for docs/articulation.md (issue 18): the issue's table before and after the lip closures.

Prints, for VOCA's official output of ``test_sentence.wav`` (``../shared/data``): per p/b/m the smallest
inner-lip gap (mean of the iBUG pairs 61–67, 62–66, 63–65) in [start − 40 ms, end + 40 ms] and
[start − 80 ms, end + 40 ms], before and after, and the worst pair of the whole line (its smallest gap
minus its rest gap); where VOCA's own minimum sits against the phone (its lead); the f/v tuck measures;
the same checks with each seed emotion on; and the second clip (``test.wav``, detected phones).
Phones from the phoneme stage: forced alignment with the transcript (``--detect``: without it).

    nice -n 10 .venv/bin/python tools/articulation_table.py [--detect]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voca_addon.core.animation.shapekeys import factorize  # noqa: E402
from voca_addon.core.articulation import add_corrections, lip_line  # noqa: E402
from voca_addon.core.flame import meshio  # noqa: E402
from voca_addon.core.phonemes import phones_for_audio  # noqa: E402

DATA = ROOT / ".." / "shared" / "data"
SENTENCE = "Severe myopia contributed to Ron's inferiority complex"


def window(phone, lead, fps, frames):
    return max(0, math.ceil((phone.start - lead) * fps - 1e-9)), min(frames - 1, math.floor((phone.end + 0.04) * fps + 1e-9))


def table(anim, track, offset=None, title=""):
    line = lip_line(anim.template)
    extra = 0.0 if offset is None else offset[None]
    out = add_corrections(anim, track, offset=offset)
    v0, v1 = anim.vertices() + extra, out.vertices() + extra
    i0, i1 = line.ibug_gap(v0) * 1e3, line.ibug_gap(v1) * 1e3
    g0, g1 = line.gaps(v0) * 1e3, line.gaps(v1) * 1e3
    rest = line.rest * 1e3
    print(f"\n{title}\n")
    print("| phone | word | time (s) | ±40 ms before → after | −80/+40 ms before → after | worst pair over rest, "
          "before → after | VOCA's min. vs start | closure weight max |")
    print("|---|---|---|---|---|---|---|---|")
    for p in track.of("P", "B", "M"):
        a40, b = window(p, 0.04, anim.fps, anim.num_frames)
        a80, _ = window(p, 0.08, anim.fps, anim.num_frames)
        lo = max(0, math.ceil((p.start - 0.15) * anim.fps))
        lead = (lo + int(np.argmin(i0[lo:b + 1]))) / anim.fps - p.start
        w0 = (g0[a80:b + 1] - rest).min(axis=0).max()
        w1 = (g1[a80:b + 1] - rest).min(axis=0).max()
        print(f"| {p.phone} | {p.word} | {p.start:.2f}–{p.end:.2f} | {i0[a40:b + 1].min():.2f} → {i1[a40:b + 1].min():.2f} mm "
              f"| {i0[a80:b + 1].min():.2f} → {i1[a80:b + 1].min():.2f} mm | {w0:+.2f} → {w1:+.2f} mm "
              f"| {lead * 1e3:+.0f} ms | {out.corrections.weights[a80:b + 1, 0].max():.2f} |")
    floor = np.where(g0 >= line.floor * 1e3, line.floor * 1e3, 0.5 * g0)
    print(f"\nsmallest pair gap after: {g1.min():.2f} mm (VOCA's own: {g0.min():.2f} mm); smallest iBUG mean gap after: "
          f"{i1.min():.2f} mm; pairs under their floor: {(g1 < floor - 1e-4).sum()}; rest iBUG gap "
          f"{line.ibug_gap(anim.template[None])[0] * 1e3:.2f} mm")
    tucks = track.of("F", "V")
    if tucks:
        n = line.rest_vectors / line.rest[:, None]
        print("\n| f/v | word | time (s) | lift: iBUG gap along rest direction − rest, before → after | "
              "retraction (upper z − lower z − rest), before → after | tuck weight max |")
        print("|---|---|---|---|---|---|")
        for p in tucks:
            a, b = window(p, 0.08, anim.fps, anim.num_frames)
            cells = []
            for v in (v0, v1):
                r = v[a:b + 1, line.pairs[line.ibug, 0]] - v[a:b + 1, line.pairs[line.ibug, 1]]
                lift = (np.einsum("fpk,pk->fp", r, n[line.ibug]) - line.rest[line.ibug]).mean(axis=1) * 1e3
                back = (r[..., 2] - line.rest_vectors[line.ibug, 2]).mean(axis=1) * 1e3
                k = int(np.argmin(lift))
                cells.append((lift[k], back[k]))
            print(f"| {p.phone} | {p.word} | {p.start:.2f}–{p.end:.2f} | {cells[0][0]:+.2f} → {cells[1][0]:+.2f} mm "
                  f"| {cells[0][1]:+.2f} → {cells[1][1]:+.2f} mm | {out.corrections.weights[a:b + 1, 1].max():.2f} |")
    far = np.ones(anim.num_frames, bool)
    t = np.arange(anim.num_frames) / anim.fps
    for p in track.phones:
        if p.phone in ("P", "B", "M", "F", "V"):
            far &= ~((t > p.start - 0.15) & (t < p.end + 0.15))
    moved = np.linalg.norm(v1[far] - v0[far], axis=2).max() * 1e3 if far.any() else 0.0
    print(f"\nframes ≥ 150 ms from any p/b/m/f/v: {far.sum()} of {anim.num_frames}, largest change {moved:.4f} mm")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detect", action="store_true", help="phones detected without the transcript")
    args = parser.parse_args(argv)
    template = meshio.read_mesh(DATA / "flame" / "FLAME_sample.ply").vertices
    anim = factorize(np.load(DATA / "voca_official" / "output_test_sentence_cond3.npz")["vertices"], template)
    track = phones_for_audio(DATA / "audio" / "test_sentence.wav", None if args.detect else SENTENCE)
    table(anim, track, title=f"test_sentence.wav, phones {track.source}")
    emotions = np.load(DATA / "emotions" / "seed_emotion_offsets.npz")
    names = [str(n) for n in emotions["names"]]
    neutral = emotions["offsets"][names.index("neutral")].astype(np.float64)
    for k, name in enumerate(names):
        if name != "neutral":
            table(anim, track, emotions["offsets"][k] - neutral, f"with the seed emotion '{name}'")
    second = factorize(np.load(DATA / "voca_official" / "output_test.npz")["vertices"], template)
    track2 = phones_for_audio(DATA / "audio" / "test.wav", None)
    print("\ntest.wav detected words: " + " ".join(dict.fromkeys(p.word for p in track2.phones)))
    table(second, track2, title="test.wav (second clip, not used for tuning), phones detected")


if __name__ == "__main__":
    main()
