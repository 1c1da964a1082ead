"""Benchmark: ``apply_controls`` on 60 s of VOCA motion at 60 fps (issue 18: the knobs in < 0.1 s).

Not a test (nothing is asserted). The motion is the official VOCA output for ``test_sentence.wav``
(``../shared/data``) tiled to 60 s, with its phone track (forced alignment) tiled alike; each
setting runs ``--repeats`` times and the fastest is printed (a shared machine's slower runs measure
the other load).

    nice -n 10 .venv/bin/python tools/bench_controls.py [--seconds 60] [--repeats 7]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voca_addon.core.animation.shapekeys import ShapeKeyAnimation, factorize  # noqa: E402
from voca_addon.core.articulation import ArticulationSettings, apply_controls  # noqa: E402
from voca_addon.core.flame import meshio  # noqa: E402
from voca_addon.core.phonemes import Phone, PhoneTrack, phones_for_audio  # noqa: E402

DATA = ROOT / ".." / "shared" / "data"
SENTENCE = "Severe myopia contributed to Ron's inferiority complex"


def tiled(seconds: float):
    template = meshio.read_mesh(DATA / "flame" / "FLAME_sample.ply").vertices
    clip = factorize(np.load(DATA / "voca_official" / "output_test_sentence_cond3.npz")["vertices"], template)
    track = phones_for_audio(DATA / "audio" / "test_sentence.wav", SENTENCE)
    copies = int(np.ceil(seconds / clip.duration_s))
    frames = int(round(seconds * clip.fps))
    weights = np.tile(clip.weights, (copies, 1))[:frames]
    phones = [Phone(p.phone, p.start + k * clip.duration_s, p.end + k * clip.duration_s, p.word)
              for k in range(copies) for p in track.phones if p.end + k * clip.duration_s <= seconds]
    anim = ShapeKeyAnimation(clip.basis, clip.bias, weights, clip.fps, clip.template, clip.names)
    return anim, PhoneTrack(tuple(phones), "aligned")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    anim, track = tiled(args.seconds)
    print(f"{anim.num_frames} frames ({anim.duration_s:.1f} s at {anim.fps:g} fps), {len(track.phones)} phones, "
          f"{len(track.of('P', 'B', 'M'))} p/b/m, {len(track.of('F', 'V'))} f/v")
    settings = {"defaults": ArticulationSettings(),
                "speech 1.3": ArticulationSettings(speech_strength=1.3),
                "smoothing 40 ms": ArticulationSettings(smoothing_ms=40.0),
                "mouth close +0.1, closure 1.5": ArticulationSettings(mouth_close=0.1, closure_strength=1.5),
                "all knobs": ArticulationSettings(speech_strength=0.8, smoothing_ms=30.0, mouth_close=-0.05,
                                                  closure_strength=1.2)}
    apply_controls(anim, track, ArticulationSettings())                         # warm the lip-line cache
    for name, value in settings.items():
        best = np.inf
        for _ in range(args.repeats):
            start = time.perf_counter()
            apply_controls(anim, track, value)
            best = min(best, time.perf_counter() - start)
        print(f"{name:32s} {best * 1e3:7.1f} ms  (goal < 100 ms)")


if __name__ == "__main__":
    main()
