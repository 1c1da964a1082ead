"""Benchmark: re-applying the articulation knobs on 60 s of animation in Blender (issue 18: < 0.1 s).

The animation is the official VOCA output for ``audio/test_sentence.wav`` (5.1 s, factorised into shape keys)
repeated to 60 s at 60 fps (3600 frames), with its five bilabials (issue 18's table) repeated with it, written on
a FLAME head as Animate from audio writes it (speech keys, stored exact weights, correction keys). Then each knob
change is timed as the panel makes it (setting the property; its update callback runs
``articulation_writer.reapply`` = ``core.articulation.apply_controls`` + the curves rewritten), alternating with
the default so that every timed change rewrites the curves. Every timed change sets a value not set before
(``value + i · step``), so no kept fit (``core.articulation.controls``) serves a speech knob: each one fits the
key shapes again, as an artist dragging the slider makes it.

Run: ``nice -n 10 .venv/bin/python tools/bench_articulation_blender.py [--seconds 60] [--repeat 20]`` (any bpy
venv). Prints the load average, then one line per knob: median and worst over ``--repeat`` changes of the whole
re-application's wall and CPU time (``time.process_time``: this process, all threads), and of its Blender side
(the whole minus the core call inside it, timed in the same call, so machine load hits both alike).
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
DATA = ROOT.parent / "shared" / "data"
BILABIALS = (("M", 1.11, 1.18, "myopia"), ("P", 1.44, 1.54, "myopia"), ("B", 2.02, 2.06, "contributed"),
             ("M", 3.71, 3.77, "complex"), ("P", 3.77, 3.83, "complex"))
SETTINGS = (("speech_strength", 0.8, 1.0, 0.002), ("smoothing_ms", 30.0, 0.0, 0.5),
            ("closure_strength", 0.6, 1.0, 0.005), ("mouth_close", 0.2, 0.0, 0.002),
            ("closures", False, True, None))   # (knob, first value, default, step between timed changes)


def build(seconds: float):
    """(anim [60 fps, `seconds` long], phone track) from the official clip repeated."""
    from voca_addon.core.animation.shapekeys import ShapeKeyAnimation, factorize
    from voca_addon.core.flame.meshio import read_mesh
    from voca_addon.core.phonemes import Phone, PhoneTrack
    data = np.load(DATA / "voca_official" / "output_test_sentence_cond3.npz")
    template = read_mesh(DATA / "flame" / "FLAME_sample.ply").vertices
    clip = factorize(data["vertices"], template, 60.0)
    frames = int(seconds * 60)
    repeats = -(-frames // clip.num_frames)
    weights = np.tile(clip.weights, (repeats, 1))[:frames]
    anim = ShapeKeyAnimation(clip.basis, clip.bias, weights, 60.0, clip.template)
    length = clip.num_frames / 60.0
    phones = [Phone(p, s + i * length, e + i * length, w) for i in range(repeats) for p, s, e, w in BILABIALS
              if e + i * length < frames / 60.0]
    return anim, PhoneTrack(tuple(phones), "textgrid"), template


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    import bpy
    import voca_addon
    from voca_addon.blender.articulation import phones as articulation_phones, writer as articulation_writer
    from voca_addon.blender.speech import pipeline, writer
    from voca_addon.core.articulation import apply_controls
    bpy.ops.wm.read_factory_settings(use_empty=True)
    voca_addon.register()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 60, 1.0
    anim, track, template = build(args.seconds)
    obj = writer.build_head(pipeline.HEAD_NAME, template, np.zeros((0, 3), np.int64), scene.collection)
    start = time.perf_counter()
    written = writer.write_animation(obj, anim, scene, 1, "shape_keys", pipeline.PREFIX)
    articulation_writer.write_articulation(obj, scene, anim, written, articulation_phones.PhoneOutcome(track))
    print(f"bpy {bpy.app.version_string}: {anim.num_frames} frames × {anim.basis.shape[0]} keys, "
          f"{len(track.phones)} bilabials; first write {time.perf_counter() - start:.3f} s")
    props = obj.voca_articulation
    inner: list = []
    core_module = sys.modules["voca_addon.core.articulation"]

    def timed(*a, **k):                             # the core call inside the re-apply, timed apart
        t0 = time.perf_counter()
        out = apply_controls(*a, **k)
        inner.append(time.perf_counter() - t0)
        return out

    core_module.apply_controls = timed              # reapply imports it at each call
    print("load average (1, 5, 15 min): %.1f %.1f %.1f on %d CPUs" % (os.getloadavg() + (os.cpu_count(),)))
    for name, value, default, step in SETTINGS:
        whole, blender, cpu = [], [], []
        for i in range(args.repeat):
            inner.clear()
            new = value if step is None else value + i * step
            t0, c0 = time.perf_counter(), time.process_time()
            setattr(props, name, new)               # the update callback re-applies, as in the panel
            whole.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            blender.append(whole[-1] - sum(inner))
            assert not props.status, props.status
            setattr(props, name, default)
        ms = lambda xs: f"{statistics.median(xs) * 1e3:.1f} / {max(xs) * 1e3:.1f}"   # noqa: E731
        print(f"{name} = {value}{'' if step is None else f' + i·{step}'}: re-apply wall {ms(whole)} ms, "
              f"CPU {ms(cpu)} ms; Blender side wall {ms(blender)} ms  (median / worst of {args.repeat})")
    print("load average after: %.1f %.1f %.1f" % os.getloadavg())
    core_module.apply_controls = apply_controls
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
