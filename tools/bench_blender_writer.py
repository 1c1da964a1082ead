"""Blender-side figures for ``python -m voca_addon bench``: writing, file size, playback.

Development tool (needs the bpy module and ../shared/data). Writes a VOCA-shaped animation (50 keys
+ bias, weights with the spread of real codes) onto the real FLAME template and measures:
the time to write 60 s at 60 fps, the .blend size per minute of animation (size with two minutes
minus size with one, Blender's default compressed save), and the time per frame change.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FPS = 60
CODE_DIM = 50
PLAYBACK_FRAMES = 600


def _animation(template, seconds: float):
    from voca_addon.core.animation.shapekeys import ShapeKeyAnimation
    rng = np.random.default_rng(0)
    v = template.astype(np.float32)
    basis = rng.standard_normal((CODE_DIM, len(v), 3)).astype(np.float32) * 1e-4
    weights = np.cumsum(rng.standard_normal((int(seconds * FPS), CODE_DIM)), 0).astype(np.float32) * 0.1
    return ShapeKeyAnimation(basis, np.zeros_like(v), weights, float(FPS), v)


def _fresh_head(mesh):
    import bpy
    from voca_addon.blender.speech import writer
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    return scene, writer.build_head("FLAME head", mesh.vertices, mesh.faces, scene.collection)


def measure(template_path: str) -> dict:
    import bpy
    from voca_addon.blender.speech import writer
    from voca_addon.core.flame import meshio
    mesh = meshio.read_mesh(template_path)
    out, sizes = {}, {}
    folder = Path(tempfile.mkdtemp(prefix="voca-bench-blend-"))
    for minutes in (0, 1, 2):
        scene, obj = _fresh_head(mesh)
        if minutes:
            anim = _animation(mesh.vertices, 60.0 * minutes)
            t0 = time.perf_counter()
            writer.write_animation(obj, anim, scene, 1)
            if minutes == 1:
                out["write_60s_s"] = time.perf_counter() - t0
                scene.frame_end = anim.num_frames
                times = []
                for f in range(1, PLAYBACK_FRAMES + 1):
                    t = time.perf_counter()
                    scene.frame_set(f)
                    times.append(time.perf_counter() - t)
                out["frame_change_ms"] = float(np.mean(times)) * 1e3
        path = folder / f"m{minutes}.blend"
        bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=True)
        sizes[minutes] = path.stat().st_size
    out["blend_head_only_mb"] = sizes[0] / 1e6
    out["blend_1min_mb"] = sizes[1] / 1e6
    out["blend_per_minute_mb"] = (sizes[2] - sizes[1]) / 1e6
    return out


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
