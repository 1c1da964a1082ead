"""``retarget --audio`` in Blender (issue 18): the lips close on the character. Transferred keys: VOCA's keys
stay exact and the closures are keys of their own (voca_lips_close / voca_lips_tuck, owned, keyed only around
the phones); its own ARKit keys: the driven keys close the lips. Checked on the evaluated mesh.

The phones are the issue's table (PocketSphinx forced alignment of the official clip's sentence), given as an
alignment file: the p/b/m of "myopia", "contributed" and "complex"."""
from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from voca_addon.cli import retarget as retarget_cli  # noqa: E402
from voca_addon.blender import compat  # noqa: E402
from voca_addon.blender.speech import writer
from voca_addon.core.character import landmarks as lm  # noqa: E402
from voca_addon.core.character.arkit import canonical_name  # noqa: E402

BILABIALS = [("M", 1.11, 1.18, "myopia"), ("P", 1.44, 1.54, "myopia"), ("B", 2.02, 2.06, "contributed"),
             ("M", 3.71, 3.77, "complex"), ("P", 3.77, 3.83, "complex")]
INNER_LIPS = ((61, 67), (62, 66), (63, 65))


@pytest.fixture
def args(tmp_path, shared_data):
    pairs = tmp_path / "pairs.txt"
    lm.write_pairs(pairs, np.loadtxt(shared_data / "arkit" / "FLAME_landmarks.txt", dtype=int),
                   np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int))
    alignment = tmp_path / "phones.json"
    alignment.write_text(json.dumps([{"phone": p, "start": a, "end": b, "word": w} for p, a, b, w in BILABIALS]))
    return argparse.Namespace(
        source=str(shared_data / "voca_official" / "output_test_sentence_cond3.npz"),
        target=str(shared_data / "arkit" / "ARKit_blendshapes" / "Neutral.obj"), landmarks=str(pairs),
        out=str(tmp_path / "out.blend"), target_keys=None, curves=None,
        template=str(shared_data / "flame" / "FLAME_sample.ply"), audio=str(shared_data / "audio" / "test_sentence.wav"),
        fps=None, overwrite=False, transcript=None, alignment=str(alignment), no_closures=False,
        phonemes=str(tmp_path / "phones.TextGrid"), guess_landmarks=None)


def _gap(vertices, ids):
    return float(np.mean([np.linalg.norm(vertices[ids[a]] - vertices[ids[b]]) for a, b in INNER_LIPS]))


def _smallest_gaps(obj, scene, evaluated, ids, fps=60.0):
    """The smallest inner-lip gap of the evaluated mesh in each p/b/m's window [start − 80 ms, end + 40 ms]."""
    out = []
    for _, start, end, _ in BILABIALS:
        frames = range(int(np.ceil((start - 0.08) * fps)), int(np.floor((end + 0.04) * fps)) + 1)
        out.append(min(_gap(evaluated(obj, scene, scene.frame_start + f), ids) for f in frames))
    return out


def test_retarget_audio_writes_closure_keys_beside_voca_exact_keys(scene, args, evaluated, shared_data, tmp_path):
    result = retarget_cli.compute(args)
    retarget_cli.run(args)
    assert (tmp_path / "phones.TextGrid").is_file()
    bpy.ops.wm.open_mainfile(filepath=args.out)
    scene = bpy.context.scene
    obj = bpy.data.objects["Neutral"]
    key = obj.data.shape_keys
    names = {b.name for b in key.key_blocks}
    assert {"voca_lips_close", "voca_lips_tuck"} <= names and len(names) == 1 + len(result.motion.names) + 1 + 2
    assert {"voca_lips_close", "voca_lips_tuck"} <= set(key[writer.OWNED_KEYS])
    curves = {fc.data_path: fc for fc in compat.action_fcurves(key.animation_data.action)}
    close = curves['key_blocks["voca_lips_close"].value']
    assert 0 < len(close.keyframe_points) < result.motion.num_frames // 2          # keyed around the phones only
    frames = [0, 60, 67, 89, 226, 305]
    got = np.stack([evaluated(obj, scene, scene.frame_start + f) for f in frames])
    np.testing.assert_allclose(got, result.motion.vertices(frames), atol=2e-6)       # metres
    ids = np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int)
    rest = _gap(result.target.vertices, ids)
    gaps = _smallest_gaps(obj, scene, evaluated, ids)
    print("evaluated ARKit face: " + ", ".join(f"{g * 1e3:.2f}" for g in gaps) + f" mm (rest {rest * 1e3:.2f})")
    assert all(g <= rest + 0.3e-3 for g in gaps)
    for block in ("voca_lips_close", "voca_lips_tuck"):                              # mute: VOCA's exact motion
        key.key_blocks[block].mute = True
    exact = np.stack([evaluated(obj, scene, scene.frame_start + f) for f in frames])
    np.testing.assert_allclose(exact, result.motion.exact().vertices(frames), atol=2e-6)
    writer.remove_animation(obj)                                                    # Remove takes them too
    assert obj.data.shape_keys is None or not ({"voca_lips_close"} & {b.name for b in obj.data.shape_keys.key_blocks})


def test_retarget_audio_drives_its_own_keys_to_closed_lips(scene, args, evaluated, shared_data, tmp_path):
    args.target_keys = str(shared_data / "arkit" / "ARKit_blendshapes")
    args.curves = str(tmp_path / "take.csv")
    result = retarget_cli.compute(args)
    retarget_cli.run(args)
    bpy.ops.wm.open_mainfile(filepath=args.out)
    scene = bpy.context.scene
    obj = bpy.data.objects["Neutral"]
    assert {b.name for b in obj.data.shape_keys.key_blocks} == {"Basis", *result.keys.names}
    ids = np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int)
    rest = _gap(result.target.vertices, ids)
    gaps = _smallest_gaps(obj, scene, evaluated, ids)
    print("evaluated ARKit keys: " + ", ".join(f"{g * 1e3:.2f}" for g in gaps) + f" mm (rest {rest * 1e3:.2f})")
    assert all(g <= rest + 0.3e-3 for g in gaps)
    w = result.solution.weights
    f = 67
    expected = result.keys.rest + np.einsum("k,kvd->vd", w[f].astype(np.float64), result.keys.deltas)
    np.testing.assert_allclose(evaluated(obj, scene, scene.frame_start + f), expected, atol=2e-6)
    # the Live Link CSV (--curves) holds the very weights that close the lips above, frame for frame
    with open(args.curves, newline="") as handle:
        rows = list(csv.reader(handle))
    header, table = rows[0], np.array([[float(v) for v in row[2:]] for row in rows[1:]])
    assert len(table) == len(w)
    columns = 0
    for k, name in enumerate(result.keys.names):
        arkit = canonical_name(name)
        if arkit is not None:
            np.testing.assert_allclose(table[:, header.index(arkit[0].upper() + arkit[1:]) - 2], w[:, k], atol=1e-6)
            columns += 1
    assert columns == len(result.keys.names)
