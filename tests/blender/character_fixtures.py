"""Fixtures shared by the Character sub-panel's tests: the add-on registered with a template path only
(no model files: the Character stage needs none), and the ARKit reference face as the target with its 68
landmark pairs and the official VOCA sequence as the source."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import voca_addon  # noqa: E402
from voca_addon.blender.character import writer as character_writer  # noqa: E402
from voca_addon.blender import preferences
from voca_addon.core.character import landmarks as lm  # noqa: E402
from voca_addon.core.flame import meshio  # noqa: E402


@pytest.fixture
def addon(scene, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("VOCA_MODEL_DIR", str(tmp_path / "no-default-models"))
    voca_addon.register()
    entry = bpy.context.preferences.addons.new()
    entry.module = preferences.ADDON_ID
    entry.preferences.template_path = str(shared_data / "flame" / "FLAME_sample.ply")
    yield scene
    entry = bpy.context.preferences.addons.get(preferences.ADDON_ID)
    if entry is not None:
        bpy.context.preferences.addons.remove(entry)
    voca_addon.unregister()


@pytest.fixture
def face(addon, shared_data, tmp_path):
    folder = shared_data / "arkit"
    mesh = meshio.read_mesh(folder / "ARKit_blendshapes" / "Neutral.obj")
    obj = character_writer.build_target("Face", mesh.vertices, mesh.faces, addon.collection)
    pairs = tmp_path / "pairs.txt"
    lm.write_pairs(pairs, np.loadtxt(folder / "FLAME_landmarks.txt", dtype=int),
                   np.loadtxt(folder / "ARKit_landmarks.txt", dtype=int))
    settings = addon.voca_character
    settings.target, settings.pairs_path = obj, str(pairs)
    settings.source_path = str(shared_data / "voca_official" / "output_test_sentence_cond3.npz")
    addon.render.fps, addon.render.fps_base = 60, 1.0
    return obj, mesh
