"""Fixtures for the Blender-layer tests: a fresh empty scene, the FLAME template, random animations,
and the evaluated (post-shape-key) vertices of an object.

``bpy`` is imported inside the fixtures; each test module skips itself when ``bpy`` is missing.
"""
from __future__ import annotations

import numpy as np
import pytest

from voca_addon.core.animation.shapekeys import ShapeKeyAnimation

FLAME_PLY = ("flame", "FLAME_sample.ply")
BASIS_STD = 1e-3        # metres per unit weight: VOCA-like displacements (≈ mm)


@pytest.fixture
def scene():
    """A fresh, empty scene (factory settings, no startup objects); 24 fps."""
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


@pytest.fixture(scope="session")
def flame(shared_data):
    """The FLAME template: a :class:`voca_addon.core.flame.meshio.Mesh` (5023 vertices, metres, Y up)."""
    from voca_addon.core.flame.meshio import read_mesh
    return read_mesh(shared_data.joinpath(*FLAME_PLY))


@pytest.fixture
def make_anim(flame):
    """Factory: a random :class:`ShapeKeyAnimation` on the FLAME template."""
    def make(frames=120, fps=60.0, dims=50, seed=0, weight_std=2.0) -> ShapeKeyAnimation:
        rng = np.random.default_rng(seed)
        v = flame.vertices.shape[0]
        basis = (rng.standard_normal((dims, v, 3)) * BASIS_STD).astype(np.float32)
        bias = (rng.standard_normal((v, 3)) * BASIS_STD).astype(np.float32)
        weights = (rng.standard_normal((frames, dims)) * weight_std).astype(np.float32)
        return ShapeKeyAnimation(basis, bias, weights, float(fps), flame.vertices.astype(np.float32))
    return make


def evaluated_vertices(obj, scene, frame: int) -> np.ndarray:
    """The object's mesh after shape keys at ``frame``: float32 [V, 3], mesh-local coordinates."""
    scene.frame_set(frame)
    return evaluated_now(obj)


def evaluated_now(obj) -> np.ndarray:
    """The object's evaluated mesh at the current frame (the frame left as it is): float32 [V, 3], mesh-local."""
    import bpy
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    return co.reshape(-1, 3)


@pytest.fixture
def evaluated():
    """The function :func:`evaluated_vertices` (obj, scene, frame) → float32 [V, 3]."""
    return evaluated_vertices


def pytest_sessionfinish(session, exitstatus):
    session.config._voca_exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """With the bpy module, leave without its teardown, which crashes (4.2) or hangs (4.5) once the add-on
    was registered (:data:`voca_addon.blender.compat.EXIT_UNSAFE`); pytest has reported everything."""
    import sys
    if "bpy" in sys.modules and hasattr(config, "_voca_exit_status"):
        from voca_addon.blender import compat
        compat.exit_now(config._voca_exit_status)
