"""glb / fbx / abc / usd of a head whose lips close (issue 18): the correction keys are shape keys like VOCA's,
so glTF carries them as morph targets with their weights, FBX as blend shapes with their curves, and the
point caches (Alembic, USD) hold the evaluated, closed lips.

The head: VOCA's official output for ``test_sentence.wav`` (factorised into shape keys), its phones aligned
to the transcript with PocketSphinx, the correction keys written by :mod:`voca_addon.blender.articulation.writer`
as Animate from audio writes them."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.conftest import evaluated_vertices  # noqa: E402
from tests.blender.test_exports import CACHE_TOLERANCE, GLTF_FLOAT, TOLERANCE, read_glb, world_vertices  # noqa: E402
from tests.blender.test_headless_articulation import inner_lip_gap  # noqa: E402
from tests.core.test_cli_articulation import SENTENCE  # noqa: E402
from voca_addon.blender import compat  # noqa: E402
from voca_addon.blender.exports import engines as exports
from voca_addon.blender.speech import writer

CORRECTIONS = ("voca_lips_close", "voca_lips_tuck")
INDEX_TYPES = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32}


def accessor(gltf, index: int) -> np.ndarray:
    """A float32 glTF accessor as [count] or [count, n], sparse ones included: Blender writes a morph target
    that moves few vertices (the correction keys move only the lips) as a sparse accessor with no bufferView."""
    acc = gltf.accessors[index]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc.type]
    assert acc.componentType == GLTF_FLOAT
    blob = gltf.binary_blob()

    def read(view_index, offset, dtype, count):
        view = gltf.bufferViews[view_index]
        return np.frombuffer(blob, dtype, count, (view.byteOffset or 0) + (offset or 0))

    data = (np.zeros(acc.count * width, np.float32) if acc.bufferView is None
            else read(acc.bufferView, acc.byteOffset, np.float32, acc.count * width).copy())
    data = data.reshape(acc.count, width)
    if acc.sparse is not None:
        s = acc.sparse
        rows = read(s.indices.bufferView, s.indices.byteOffset, INDEX_TYPES[s.indices.componentType], s.count)
        data[rows.astype(np.int64)] = read(s.values.bufferView, s.values.byteOffset, np.float32,
                                           s.count * width).reshape(s.count, width)
    return data if width > 1 else data[:, 0]


def gltf_vertices(gltf, weights: np.ndarray) -> np.ndarray:
    """POSITION + Σ_i weights[:, i] · target_i in the mesh's own (FLAME, Y-up) axes: [F, V, 3]."""
    prim = gltf.meshes[0].primitives[0]
    base = accessor(gltf, prim.attributes.POSITION)
    targets = np.stack([accessor(gltf, t["POSITION"]) for t in prim.targets])          # [K, V, 3]
    out = base[None] + np.einsum("fk,kvc->fvc", weights, targets)
    return np.stack([out[..., 0], -out[..., 2], out[..., 1]], axis=-1)                 # glTF (x, z, −y) → (x, y, z)


@pytest.fixture(scope="module")
def official(shared_data):
    """(the official sequence as a ShapeKeyAnimation, its aligned phone track)."""
    from voca_addon.core.animation import sequences
    from voca_addon.core.phonemes import phones_for_audio
    anim = sequences.import_sequence(shared_data / "voca_official" / "output_test_sentence_cond3.npz",
                                     shared_data / "flame" / "FLAME_sample.ply")
    return anim, phones_for_audio(str(shared_data / "audio" / "test_sentence.wav"), SENTENCE)


@pytest.fixture
def closed_head(scene, flame, official):
    """A head with the official motion and its lip closures at 60 fps; (head, keys written, bilabial frames)."""
    from voca_addon.blender.articulation import writer as articulation_writer
    from voca_addon.blender.articulation.phones import PhoneOutcome
    anim, track = official
    scene.render.fps, scene.render.fps_base = 60, 1.0
    head = writer.build_head("FLAME head", flame.vertices, flame.faces, scene.collection)
    report = writer.write_animation(head, anim, scene, 1)
    lines = articulation_writer.write_articulation(head, scene, anim, report, PhoneOutcome(track))
    writer.set_frame_range(scene, report.frame_start, report.frame_end)
    assert any("lip closures on 5 p/b/m" in line for line in lines), lines
    names = [k.name for k in head.data.shape_keys.key_blocks[1:]]
    assert set(CORRECTIONS) <= set(names)
    # the frame of each p/b/m where the lips are closest (scene frames: 1 + frame index)
    frames = []
    for p in (p for p in track.phones if p.phone in ("M", "B", "P")):
        window = range(int(np.ceil((p.start - 0.08) * 60)) + 1, int(np.floor((p.end + 0.04) * 60)) + 2)
        frames.append(min(window, key=lambda f: inner_lip_gap(evaluated_vertices(head, scene, f))))
    return head, names, frames


def test_glb_carries_the_correction_keys_as_morph_targets(scene, closed_head, tmp_path):
    head, names, frames = closed_head
    expected = {f: evaluated_vertices(head, scene, f) for f in range(1, scene.frame_end + 1, 3)}
    gltf = read_glb(exports.export(scene, head, "glb", tmp_path / "closed.glb"))
    mesh = gltf.meshes[0]
    assert mesh.extras["targetNames"] == names and len(mesh.primitives[0].targets) == len(names)
    (animation,) = gltf.animations
    sampler = animation.samplers[animation.channels[0].sampler]
    values = accessor(gltf, sampler.output).reshape(-1, len(names))
    close = values[:, names.index("voca_lips_close")]
    assert close[[f - 1 for f in frames]].min() > 0 and close.max() > 0.05   # keyed around the bilabials
    prim = gltf.meshes[0].primitives[0]
    sparse = [n for n, t in zip(names, prim.targets) if gltf.accessors[t["POSITION"]].sparse is not None]
    assert set(CORRECTIONS) <= set(sparse)              # only the lips move: stored sparse
    vertices = gltf_vertices(gltf, values)
    for f, ev in expected.items():
        assert np.abs(vertices[f - 1] - ev).max() <= TOLERANCE, f
    for f in frames:                                     # the glTF's own lips: as closed as Blender's
        assert np.abs(vertices[f - 1] - evaluated_vertices(head, scene, f)).max() <= TOLERANCE


def test_fbx_carries_the_correction_keys_and_their_curves(scene, closed_head, tmp_path):
    head, names, frames = closed_head
    key = head.data.shape_keys
    curve = {c.data_path: c for c in compat.action_fcurves(key.animation_data.action)}
    path_of = lambda n: f'key_blocks["{n}"].value'                     # noqa: E731
    original = {n: np.array([curve[path_of(n)].evaluate(f) for f in range(1, scene.frame_end + 1)])
                for n in CORRECTIONS}
    shapes = {n: writer.key_co(key.key_blocks[n]) - writer.key_co(key.reference_key) for n in CORRECTIONS}
    path = exports.export(scene, head, "fbx", tmp_path / "closed.fbx")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=path, anim_offset=0.0)
    (imported,) = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    ikey = imported.data.shape_keys
    assert [k.name for k in ikey.key_blocks[1:]] == names
    by_path = {c.data_path: c for c in compat.action_fcurves(ikey.animation_data.action)}
    for n in CORRECTIONS:
        sampled = np.array([by_path[path_of(n)].evaluate(f) for f in range(1, len(original[n]) + 1)])
        np.testing.assert_allclose(sampled, original[n], atol=1e-4)      # FBX stores percent, float32
        moved = writer.key_co(ikey.key_blocks[n]) - writer.key_co(ikey.reference_key)
        assert np.abs(moved - shapes[n]).max() <= 1e-6
    assert original["voca_lips_close"][[f - 1 for f in frames]].min() > 0


@pytest.mark.parametrize("fmt", ["abc", "usd"])
def test_point_caches_hold_the_closed_lips(fmt, scene, closed_head, tmp_path):
    head, names, frames = closed_head
    expected = {f: world_vertices(head, scene, f) for f in frames}
    key = head.data.shape_keys
    path = exports.export(scene, head, fmt, tmp_path / f"closed.{fmt}")
    for block in key.key_blocks[1:]:                     # what the exact VOCA result gives at those frames
        block.mute = block.name in CORRECTIONS
    exact = {f: world_vertices(head, scene, f) for f in frames}
    bpy.data.objects.remove(head)
    importer = bpy.ops.wm.alembic_import if fmt == "abc" else bpy.ops.wm.usd_import
    importer(filepath=path)
    (imported,) = [o for o in scene.objects if o.type == "MESH"]
    for f in frames:
        cached = world_vertices(imported, scene, f)
        assert np.abs(cached - expected[f]).max() <= CACHE_TOLERANCE, f
        assert inner_lip_gap(cached) < inner_lip_gap(exact[f]) - 0.0003, f   # closed, not VOCA's open lips
