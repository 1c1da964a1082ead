"""``batch --target … [--target-keys …]`` with its Blender outputs and the dialogue library on the character,
run as a user runs it; real data: the ARKit reference face (mesh, 51 key OBJs, 68 landmark pairs) and
VOCASET speech. The .blend files are reopened here and checked against the clips' .npz."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.conftest import evaluated_vertices  # noqa: E402
from tests.blender.test_batch_blender import SUBJECT, batch, m, results  # noqa: E402,F401 (fixture m)
from voca_addon.blender import compat  # noqa: E402
from voca_addon.core.character import landmarks as lm  # noqa: E402

CLIPS = ("sentence01", "sentence02")


@pytest.fixture
def case(shared_data, tmp_path):
    pairs = tmp_path / "pairs.txt"
    arkit = shared_data / "arkit"
    lm.write_pairs(pairs, np.loadtxt(arkit / "FLAME_landmarks.txt", dtype=int),
                   np.loadtxt(arkit / "ARKit_landmarks.txt", dtype=int))
    folder = tmp_path / "in"
    folder.mkdir()
    for name in CLIPS:
        (folder / f"{name}.wav").symlink_to(shared_data.joinpath(*SUBJECT) / f"{name}.wav")
    return dict(folder=folder, out=tmp_path / "out", keys=arkit / "ARKit_blendshapes",
                flags=["--target", arkit / "ARKit_blendshapes" / "Neutral.obj", "--landmarks", pairs])


def _character(scene):
    (obj,) = [o for o in scene.objects if o.type == "MESH"]
    assert obj.name == "Neutral"
    return obj


def _curve_values(action, key_name: str, frames) -> np.ndarray:
    path = f'key_blocks["{key_name}"].value'
    (fcurve,) = [fc for fc in compat.action_fcurves(action) if fc.data_path == path]
    return np.array([fcurve.evaluate(f) for f in frames])


def test_batch_character_own_keys_blend_and_library(m, case, tmp_path):  # noqa: F811
    out = case["out"]
    r = batch(case["folder"], "--out", out, "--format", "npz,blend", *case["flags"], "--target-keys", case["keys"],
              "--library", out / "dialogue.blend", *m, cache=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(results(out)) == list(CLIPS)
    for name in CLIPS:                                      # one clip's .blend: the rig's keys, driven
        bpy.ops.wm.open_mainfile(filepath=str(out / f"{name}.blend"))
        scene = bpy.context.scene
        obj = _character(scene)
        key = obj.data.shape_keys
        assert len(key.key_blocks) == 52                    # Basis + the rig's 51 keys
        action = key.animation_data.action
        assert action.name == name
        with np.load(out / f"{name}.npz") as z:
            weights, names = z["key_weights"], [str(n) for n in z["key_names"]]
        assert (scene.frame_start, scene.frame_end) == (1, len(weights))
        frames = np.arange(len(weights))
        for k in (names.index("jawOpen"), names.index("mouthClose"), 0):
            np.testing.assert_allclose(_curve_values(action, names[k], 1 + frames), weights[:, k], atol=1e-6)
    bpy.ops.wm.open_mainfile(filepath=str(out / "dialogue.blend"))
    scene = bpy.context.scene
    obj = _character(scene)
    tracks = obj.data.shape_keys.animation_data.nla_tracks
    assert [t.name for t in tracks] == list(CLIPS) and [t.strips[0].action.name for t in tracks] == list(CLIPS)
    assert sorted(mk.name for mk in scene.timeline_markers) == list(CLIPS)
    assert obj.data.shape_keys.animation_data.action is None
    for track in tracks:                                    # each action keys the clip's solved weights
        with np.load(out / f"{track.name}.npz") as z:
            weights, names = z["key_weights"], [str(n) for n in z["key_names"]]
        strip = track.strips[0]
        assert int(strip.frame_end - strip.frame_start) + 1 == len(weights)
        jaw = names.index("jawOpen")
        np.testing.assert_allclose(_curve_values(strip.action, "jawOpen", 1 + np.arange(len(weights))),
                                   weights[:, jaw], atol=1e-6)


def test_batch_character_transferred_keys_library_plays_the_npz(m, case, tmp_path):  # noqa: F811
    out = case["out"]
    r = batch(case["folder"], "--out", out, *case["flags"], "--library", out / "dialogue.blend", *m, cache=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    bpy.ops.wm.open_mainfile(filepath=str(out / "dialogue.blend"))
    scene = bpy.context.scene
    obj = _character(scene)
    tracks = obj.data.shape_keys.animation_data.nla_tracks
    assert [t.name for t in tracks] == list(CLIPS)
    for track in tracks:                                    # the character's vertices = the clip's .npz
        strip = track.strips[0]
        with np.load(out / f"{track.name}.npz") as z:
            assert len(z["template"]) == len(obj.data.vertices)
            got = evaluated_vertices(obj, scene, int(strip.frame_start) + 20)
            scale = np.abs(z["template"]).max()
            assert np.abs(got - z["vertices"][20]).max() <= 1e-6 * scale


def test_batch_character_video_and_glb_on_own_keys(m, case, tmp_path):  # noqa: F811
    """``--format mp4,glb`` on the character: the video with its sound, the glTF's morph targets = the rig's keys
    with the clip's solved weights as the animation."""
    from tests.blender.test_exports import accessor, read_glb
    from voca_addon.blender.exports import render
    (case["folder"] / "sentence02.wav").unlink()
    out = case["out"]
    r = batch(case["folder"], "--out", out, "--format", "npz,mp4,glb", "--fps", "24",    # fewer frames to render
              *case["flags"], "--target-keys", case["keys"], *m, cache=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    sound = [("soun", "mp4a")] if compat.HAS_AUDIO else []
    assert render.mp4_tracks(out / "sentence01.mp4") == [("vide", "avc1")] + sound
    gltf = read_glb(out / "sentence01.glb")
    with np.load(out / "sentence01.npz") as z:
        weights = z["key_weights"]
    assert len(gltf.meshes[0].primitives[0].targets) == 51
    (anim,) = [a for a in gltf.animations if a.name == "sentence01"]
    (channel,) = [c for c in anim.channels if c.target.path == "weights"]
    values = accessor(gltf, anim.samplers[channel.sampler].output).reshape(-1, 51)
    assert len(values) == len(weights)
    names = gltf.meshes[0].extras["targetNames"]
    jaw = names.index("jawOpen")
    with np.load(out / "sentence01.npz") as z:
        k = [str(n) for n in z["key_names"]].index("jawOpen")
    np.testing.assert_allclose(values[:, jaw], weights[:, k], atol=1e-5)
