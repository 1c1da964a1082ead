"""Benchmark: ``apply_controls`` on 60 s of VOCA motion at 60 fps (issue 18: the knobs in < 0.1 s).

Not a test (nothing is asserted). The motion is the official VOCA output for ``test_sentence.wav``
(``../shared/data``) tiled to 60 s, with its phone track (forced alignment) tiled alike. Each setting runs
``--repeats`` times, each time with a value not used before (``value + i · step``: no kept fit of
``core.articulation.controls`` serves a speech knob twice, as when an artist drags a slider); the median and
worst wall and CPU time (``time.process_time``) are printed with the load average.

    nice -n 10 .venv/bin/python tools/bench_controls.py [--seconds 60] [--repeats 20]
"""
from __future__ import annotations

import argparse
import os
import statistics
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
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    anim, track = tiled(args.seconds)
    print(f"{anim.num_frames} frames ({anim.duration_s:.1f} s at {anim.fps:g} fps), {len(track.phones)} phones, "
          f"{len(track.of('P', 'B', 'M'))} p/b/m, {len(track.of('F', 'V'))} f/v")
    settings = {"defaults": lambda i: ArticulationSettings(),
                "speech 1.3 + i·0.002": lambda i: ArticulationSettings(speech_strength=1.3 + 0.002 * i),
                "smoothing 40 + i·0.5 ms": lambda i: ArticulationSettings(smoothing_ms=40.0 + 0.5 * i),
                "mouth close 0.1 + i·0.002, closure 1.5": lambda i: ArticulationSettings(
                    mouth_close=0.1 + 0.002 * i, closure_strength=1.5),
                "all knobs (speech 0.8 + i·0.002)": lambda i: ArticulationSettings(
                    speech_strength=0.8 + 0.002 * i, smoothing_ms=30.0, mouth_close=-0.05, closure_strength=1.2)}
    print("load average (1, 5, 15 min): %.1f %.1f %.1f on %d CPUs" % (os.getloadavg() + (os.cpu_count(),)))
    apply_controls(anim, track, ArticulationSettings())                         # warm the lip-line cache
    for name, make in settings.items():
        wall, cpu = [], []
        for i in range(args.repeats):
            value = make(i)
            start, c0 = time.perf_counter(), time.process_time()
            apply_controls(anim, track, value)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - c0)
        ms = lambda xs: f"{statistics.median(xs) * 1e3:6.1f} / {max(xs) * 1e3:6.1f}"   # noqa: E731
        print(f"{name:40s} wall {ms(wall)} ms, CPU {ms(cpu)} ms (median / worst of {args.repeats}; goal < 100 ms)")
    print("load average after: %.1f %.1f %.1f" % os.getloadavg())

if __name__ == "__main__":
    main()
