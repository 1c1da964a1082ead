"""Benchmark of the character stage (figures measured in this run; not a test).

1. fit + transfer onto a 50k-vertex target: FLAME with every triangle split in four twice (80k
   vertices, all on FLAME's surface), in centimetres, shuffled, cut to the 50,000 vertices nearest
   the front (the face, an open surface with the eyeballs);
2. the key solve: 60 s at 60 fps (3600 frames) onto 51 ARKit keys of the reference face.

Needs ../shared/data (FLAME, the official sequence, the ARKit face). Run:
``python tools/bench_character.py``.
"""
from __future__ import annotations

import glob
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voca_addon.core.animation.shapekeys import ShapeKeyAnimation, factorize  # noqa: E402
from voca_addon.core.character import fit as fitting, keysolve, landmarks as lm, transfer  # noqa: E402
from voca_addon.core.flame import meshio  # noqa: E402

DATA = ROOT / ".." / "shared" / "data"


def split(vertices, faces):
    """Every triangle in four at its edge midpoints (all new vertices on the surface)."""
    f = np.asarray(faces, np.int64)
    v = len(vertices)
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    unique, inverse = np.unique(e, axis=0, return_inverse=True)
    m01, m12, m20 = (v + inverse.ravel()).reshape(3, -1)
    a, b, c = f.T
    faces = np.concatenate([np.c_[a, m01, m20], np.c_[m01, b, m12], np.c_[m20, m12, c], np.c_[m01, m12, m20]])
    return np.concatenate([vertices, vertices[unique].mean(axis=1)]), faces


def big_target(flame, size=50_000):
    """FLAME split twice, the ``size`` vertices nearest its nose tip, in cm, shuffled; landmark pairs."""
    v, f = split(*split(flame.vertices, flame.faces))
    nose = flame.vertices[lm.FLAME_IBUG68[30]]
    keep = np.sort(np.argsort(np.linalg.norm(v - nose, axis=1))[:size])
    index = np.full(len(v), -1)
    index[keep] = np.arange(size)
    f = index[f[(index[f] >= 0).all(axis=1)]]
    order = np.random.default_rng(0).permutation(size)
    new = np.argsort(order)
    kept = index[lm.FLAME_IBUG68] >= 0
    return 100.0 * v[keep][order], new[f], lm.FLAME_IBUG68[kept], new[index[lm.FLAME_IBUG68[kept]]]


def timed(label, fn, *args, **kwargs):
    """Run and print wall time and this process's CPU time (the machine may be shared)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    print(f"{label}: {time.perf_counter() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU")
    return out


def main() -> None:
    flame = meshio.read_mesh(DATA / "flame" / "FLAME_sample.ply")
    seq = np.load(DATA / "voca_official" / "output_test_sentence_cond3.npz")["vertices"]
    anim = factorize(seq, flame.vertices, fps=60.0)
    target, faces, flame_marks, marks = big_target(flame)
    print(f"target: {len(target)} vertices, {len(faces)} triangles, {len(marks)} landmark pairs; "
          f"{os.cpu_count()} CPUs")
    start, cpu = time.perf_counter(), time.process_time()
    fit = timed("fit", fitting.fit_target, flame.vertices, flame.faces, target, faces, flame_marks, marks)
    moved = timed("transfer", transfer.transfer, anim, fit, target, faces)
    print(f"fit + transfer: {time.perf_counter() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU "
          f"({moved.basis.shape[0]} fields); load average {os.getloadavg()[0]:.1f}")

    folder = DATA / "arkit"
    neutral = meshio.read_mesh(folder / "ARKit_blendshapes" / "Neutral.obj")
    files = sorted(f for f in glob.glob(str(folder / "ARKit_blendshapes" / "*.obj")) if not f.endswith("Neutral.obj"))
    keys = np.stack([meshio.read_mesh(f).vertices - neutral.vertices for f in files])
    names = [os.path.basename(f)[:-4] for f in files]
    face_fit = fitting.fit_target(flame.vertices, flame.faces, neutral.vertices, neutral.faces,
                                  np.loadtxt(folder / "FLAME_landmarks.txt", dtype=np.int64),
                                  np.loadtxt(folder / "ARKit_landmarks.txt", dtype=np.int64))
    on_face = transfer.transfer(anim, face_fit, neutral.vertices, neutral.faces)
    reps = -(-3600 // anim.num_frames)                                    # 60 s at 60 fps
    weights = np.concatenate([anim.weights, anim.weights[::-1]] * reps)[:3600]
    minute = ShapeKeyAnimation(on_face.basis, on_face.bias, weights, 60.0, on_face.template, on_face.names)
    region = keysolve.motion_region(minute)
    sol = timed(f"key solve, 3600 frames onto {len(names)} keys (region given)", keysolve.solve_keys,
                minute, keys, names, region=region)
    timed("key solve including the motion region", keysolve.solve_keys, minute, keys, names)
    print(f"  {sol.report['iterations']} ADMM iterations, {len(sol.openings)} opening pairs, "
          f"explained {sol.report['explained']:.3f}")


if __name__ == "__main__":
    main()
