"""Exports of an animated head (glTF/GLB, FBX, Alembic, USD), read back by a second reader or Blender's importers.

The animation is VOCA's (random-weight model in the official format) on real speech from ../shared/data.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from voca_addon.blender import compat, keyframes  # noqa: E402
from voca_addon.blender.exports import engines as exports
from voca_addon.blender.speech import writer
from voca_addon.core import engine  # noqa: E402
from voca_addon.core.errors import InputError  # noqa: E402
from voca_addon.core.models import modelfiles  # noqa: E402

GLTF_FLOAT = 5126       # glTF componentType FLOAT
TOLERANCE = 1e-5        # metres: float32 positions of a head ~0.2 m, summed over 51 targets
CACHE_TOLERANCE = 1e-5  # world units (head scaled ×10): Alembic / USD store float32 positions


@pytest.fixture(scope="module")
def speech_anim(shared_data, voca_ckpt, ds_small_pb, model_cache, flame):
    wav = shared_data / "audio" / "vocaset" / "FaceTalk_170725_00137_TA" / "sentence02.wav"
    ds = modelfiles.load_deepspeech(ds_small_pb, model_cache)
    return engine.run(str(wav), ds, modelfiles.load_voca(voca_ckpt, model_cache), flame.vertices)


def curves_as(monkeypatch, curves: str) -> None:
    """'samples': the writer stores every per-frame curve as Blender samples (a long clip's form)."""
    if curves == "samples":
        monkeypatch.setattr(keyframes, "COMPACT_FRAMES", 10)


def assert_curves(obj, curves: str) -> None:
    """The speech curves really are keyframes or samples, as the test asks."""
    speech = [c for c in compat.action_fcurves(obj.data.shape_keys.animation_data.action)
              if not c.data_path.endswith('bias"].value')]
    assert speech and all((len(c.sampled_points) > 0) == (curves == "samples") for c in speech)


def animated_head(scene, flame, anim, fps=60):
    scene.render.fps, scene.render.fps_base = fps, 1.0
    obj = writer.build_head("FLAME head", flame.vertices, flame.faces, scene.collection)
    report = writer.write_animation(obj, anim, scene, 1)
    writer.set_frame_range(scene, report.frame_start, report.frame_end)
    return obj, report


def read_glb(path, required: bool = True):
    """A .glb read by pygltflib, a second reader (requirements-dev.txt). Where it is not installed: skip
    the test (``required``) or return None."""
    if not required and importlib.util.find_spec("pygltflib") is None:
        return None
    pygltflib = pytest.importorskip("pygltflib", reason="pygltflib (requirements-dev.txt) is not installed")
    return pygltflib.GLTF2().load(str(path))


def accessor(gltf, index: int) -> np.ndarray:
    """A float32 glTF accessor as an array [count] or [count, n] (tightly packed, as Blender writes them)."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc.type]
    assert acc.componentType == GLTF_FLOAT and view.byteStride in (None, 0, 4 * width)
    data = np.frombuffer(gltf.binary_blob(), np.float32, acc.count * width,
                         (view.byteOffset or 0) + (acc.byteOffset or 0))
    return data.reshape(acc.count, width) if width > 1 else data


def gltf_vertices(gltf, weights: np.ndarray) -> np.ndarray:
    """POSITION + Σ_i weights[:, i] · target_i, back in the mesh's own (FLAME, Y-up) axes: [F, V, 3]."""
    prim = gltf.meshes[0].primitives[0]
    base = accessor(gltf, prim.attributes.POSITION)
    targets = np.stack([accessor(gltf, t["POSITION"]) for t in prim.targets])          # [K, V, 3]
    out = base[None] + np.einsum("fk,kvc->fvc", weights, targets)
    return np.stack([out[..., 0], -out[..., 2], out[..., 1]], axis=-1)                 # glTF (x, z, −y) → (x, y, z)


@pytest.mark.parametrize("curves", ["keys", "samples"])
@pytest.mark.parametrize("kind", ["speech", "large weights"])
def test_exports_glb_morph_targets_and_weights_match_the_animation(kind, curves, scene, flame, speech_anim, make_anim,
                                                                    tmp_path, monkeypatch):
    curves_as(monkeypatch, curves)
    anim = speech_anim if kind == "speech" else make_anim(frames=90, weight_std=8.0)   # > ±10: rescaled keys
    obj, report = animated_head(scene, flame, anim)
    assert_curves(obj, curves)
    obj.data.shape_keys.animation_data.action.name = "sentence02"
    path = exports.export(scene, obj, "glb", tmp_path / "head.glb")
    gltf = read_glb(path)
    mesh = gltf.meshes[0]
    assert len(gltf.meshes) == 1 and len(mesh.primitives[0].targets) == 51
    assert mesh.extras["targetNames"] == list(report.key_names)
    (animation,) = gltf.animations
    assert animation.name == "sentence02"
    (channel,) = animation.channels
    assert channel.target.path == "weights"
    sampler = animation.samplers[channel.sampler]
    times, values = accessor(gltf, sampler.input), accessor(gltf, sampler.output).reshape(-1, 51)
    np.testing.assert_allclose(times, np.arange(anim.num_frames) / 60.0, atol=1e-6)    # from 0 s, every frame
    scales = np.array([obj.data.shape_keys.get(writer.KEY_SCALES, {}).get(n, 1.0) for n in report.key_names[:-1]])
    assert (kind == "large weights") == bool((scales != 1).any())
    np.testing.assert_allclose(values[:, :50] * scales, anim.weights, rtol=0, atol=1e-5 * max(1, scales.max()))
    assert np.all(values[:, 50] == 1.0)                                                # the bias key
    assert np.abs(gltf_vertices(gltf, values) - anim.vertices()).max() <= TOLERANCE


def test_exports_glb_round_trip_through_blenders_importer(scene, flame, speech_anim, tmp_path):
    obj, report = animated_head(scene, flame, speech_anim)
    path = exports.export(scene, obj, "glb", tmp_path / "head.glb")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=path)
    (imported,) = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    key = imported.data.shape_keys
    assert [k.name for k in key.key_blocks[1:]] == list(report.key_names)
    curves = list(compat.action_fcurves(key.animation_data.action))
    assert len(curves) == 51 and all(len(c.keyframe_points) == speech_anim.num_frames for c in curves)
    k7 = next(c for c in curves if c.data_path == f'key_blocks["{report.key_names[7]}"].value')
    values = np.array([p.co[1] for p in k7.keyframe_points])
    np.testing.assert_allclose(values, speech_anim.weights[:, 7], atol=1e-5)


@pytest.mark.parametrize("curves", ["keys", "samples"])
def test_exports_fbx_keeps_the_shape_key_animation(curves, scene, flame, speech_anim, tmp_path, monkeypatch):
    curves_as(monkeypatch, curves)
    obj, report = animated_head(scene, flame, speech_anim)
    assert_curves(obj, curves)
    path = exports.export(scene, obj, "fbx", tmp_path / "head.fbx")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=path, anim_offset=0.0)       # keep the file's frame numbers
    (imported,) = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    key = imported.data.shape_keys
    assert [k.name for k in key.key_blocks[1:]] == list(report.key_names)
    by_path = {c.data_path: c for c in compat.action_fcurves(key.animation_data.action)}
    for k in (0, 13, 49):
        curve = by_path[f'key_blocks["{report.key_names[k]}"].value']
        sampled = np.array([curve.evaluate(f) for f in range(1, speech_anim.num_frames + 1)])
        np.testing.assert_allclose(sampled, speech_anim.weights[:, k], atol=1e-4)   # FBX stores percent, float32
    base = writer.key_co(key.reference_key)
    for k in (0, 49):                                         # the blend shapes are VOCA's decoder rows
        assert np.abs(writer.key_co(key.key_blocks[k + 1]) - base - speech_anim.basis[k]).max() <= 1e-6


def world_vertices(obj, scene, frame: int) -> np.ndarray:
    """Evaluated vertices in world space at ``frame``: float64 [V, 3]."""
    scene.frame_set(frame)
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    m = np.array(evaluated.matrix_world)
    return co.reshape(-1, 3).astype(np.float64) @ m[:3, :3].T + m[:3, 3]


@pytest.mark.parametrize("curves", ["keys", "samples"])
@pytest.mark.parametrize("fmt", ["abc", "usd"])
def test_exports_point_cache_reproduces_every_frame(fmt, curves, scene, flame, speech_anim, tmp_path, monkeypatch):
    """Alembic / USD: the re-imported cache gives the head's world-space vertices at sampled frames."""
    curves_as(monkeypatch, curves)
    obj, report = animated_head(scene, flame, speech_anim)
    assert_curves(obj, curves)
    frames = [report.frame_start, report.frame_start + 57, report.frame_end]
    expected = {f: world_vertices(obj, scene, f) for f in frames}
    path = exports.export(scene, obj, fmt, tmp_path / f"head.{fmt}")
    bpy.data.objects.remove(obj)
    importer = bpy.ops.wm.alembic_import if fmt == "abc" else bpy.ops.wm.usd_import
    importer(filepath=path)
    (imported,) = [o for o in scene.objects if o.type == "MESH"]
    for f in frames:
        assert np.abs(world_vertices(imported, scene, f) - expected[f]).max() <= CACHE_TOLERANCE, f
    moved = np.abs(expected[frames[1]] - expected[frames[0]]).max()
    assert moved > 100 * CACHE_TOLERANCE                    # the frames differ: a static cache would fail


def test_exports_refusals_write_nothing(scene, flame, speech_anim, tmp_path):
    obj, _ = animated_head(scene, flame, speech_anim)
    with pytest.raises(InputError, match="must end in .glb"):
        exports.export(scene, obj, "glb", tmp_path / "head.gltf")
    with pytest.raises(InputError, match="does not exist"):
        exports.export(scene, obj, "fbx", tmp_path / "missing" / "head.fbx")
    with pytest.raises(InputError, match="Unknown export format"):
        exports.export(scene, obj, "obj", tmp_path / "head.obj")
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(camera)
    with pytest.raises(InputError, match="a mesh"):
        exports.export(scene, camera, "abc", tmp_path / "head.abc")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def registered(scene):
    """The export operator registered (the whole add-on's registration is tested elsewhere)."""
    from voca_addon.blender.exports.operators import VOCA_OT_export_animation
    bpy.utils.register_class(VOCA_OT_export_animation)
    yield
    bpy.utils.unregister_class(VOCA_OT_export_animation)


def test_exports_operator_writes_the_chosen_format(registered, scene, flame, speech_anim, tmp_path):
    from voca_addon.blender.exports.operators import VOCA_OT_export_animation
    obj, report = animated_head(scene, flame, speech_anim)
    bpy.context.view_layer.update()
    bpy.context.view_layer.objects.active = obj
    assert VOCA_OT_export_animation.disabled_reason(bpy.context) is None
    assert bpy.ops.voca.export_animation(filepath=str(tmp_path / "head.glb"), format="glb") == {"FINISHED"}
    gltf = read_glb(tmp_path / "head.glb", required=False)
    assert gltf is None or len(gltf.meshes[0].primitives[0].targets) == 51
    with pytest.raises(RuntimeError, match="does not exist"):     # the user error, reported; nothing written
        bpy.ops.voca.export_animation(filepath=str(tmp_path / "missing" / "head.abc"), format="abc")
    plain = writer.build_head("plain", flame.vertices, flame.faces, scene.collection)
    bpy.context.view_layer.update()
    bpy.context.view_layer.objects.active = plain
    assert "no shape-key animation" in VOCA_OT_export_animation.disabled_reason(bpy.context)
    assert not bpy.ops.voca.export_animation.poll()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.glb"]
