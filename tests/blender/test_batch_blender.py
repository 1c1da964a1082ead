"""``batch`` with its Blender outputs (.blend, .mp4, .glb, .fbx, .abc, .usd) and the dialogue library, run as
a user runs it (``python -m voca_addon batch`` and ``python voca_addon/headless.py -- batch``, the argument
path of ``blender -b -P``), on real VOCASET speech; the files are reopened and checked here."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.conftest import evaluated_vertices  # noqa: E402
from tests.blender.test_exports import read_glb  # noqa: E402
from voca_addon.blender import compat  # noqa: E402
from voca_addon.blender.exports import render

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-6            # metres
EXIT_SOME_FAILED = 4
SUBJECT = ("audio", "vocaset", "FaceTalk_170912_03278_TA")


def batch(*args, script=False, cache):
    args = ["batch", *map(str, args)]
    command = ([sys.executable, str(ROOT / "voca_addon" / "headless.py"), "--", *args] if script
               else [sys.executable, "-m", "voca_addon", *args])
    env = dict(os.environ, VOCA_CACHE_DIR=str(cache), VOCA_MODEL_DIR=str(cache / "no-models"))
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def m(voca_ckpt, ds_small_pb, shared_data, tmp_path_factory):
    return ["--voca", voca_ckpt, "--deepspeech", ds_small_pb, "--template",
            shared_data / "flame" / "FLAME_sample.ply", "--cache", tmp_path_factory.mktemp("batch-blender-cache")]


def results(out):
    with open(out / "batch_summary.json") as f:
        return {r["name"]: r for r in json.load(f)["results"]}


def test_batch_blender_every_format_per_clip(m, shared_data, tmp_path):
    wav = shared_data.joinpath(*SUBJECT) / "sentence03.wav"
    listing = tmp_path / "clips.csv"
    listing.write_text(f"audio,emotion,strength,name\n{wav},happy,0.5,hello\n{tmp_path / 'clips.csv'},,,notaudio\n")
    out = tmp_path / "out"
    formats = "npz,blend,glb,fbx,abc,usd"
    r = batch(listing, "--out", out, "--format", formats, "--emotion-source",
              shared_data / "emotions" / "seed_emotion_offsets.npz", *m, cache=tmp_path)
    assert r.returncode == EXIT_SOME_FAILED, r.stderr[-3000:]
    # Found by a trial run: Blender's exporters printed per file to stdout ("FBX export starting...
    # '.voca-….part.fbx'"), on a pipe after the batch's summary. A batch keeps to its one line per clip.
    assert "export" not in r.stdout.lower() and ".part." not in r.stdout, r.stdout[-2000:]
    rows = results(out)
    assert rows["notaudio"]["outcome"] == "failed" and rows["hello"]["outcome"] == "ok"
    assert [Path(p).name for p in rows["hello"]["outputs"]] == [f"hello.{f}" for f in formats.split(",")]
    assert not [p for p in out.iterdir() if p.name.startswith("notaudio") or p.name.startswith(".")]
    with np.load(out / "hello.npz") as z:
        vertices, frames = z["vertices"], len(z["weights"])
        assert str(z["names"][-1]) == "emotion_happy"
    bpy.ops.wm.open_mainfile(filepath=str(out / "hello.blend"))
    scene = bpy.context.scene
    (head,) = [o for o in scene.objects if o.type == "MESH"]
    key = head.data.shape_keys
    assert key.animation_data.action.name == "hello" and "EMO happy" in key.key_blocks
    assert (scene.frame_start, scene.frame_end) == (1, frames)
    for local in (0, frames // 2, frames - 1):                 # speech + the eased emotion, as in the .npz
        assert np.abs(evaluated_vertices(head, scene, 1 + local) - vertices[local]).max() <= TOLERANCE
    gltf = read_glb(out / "hello.glb", required=False)
    if gltf is not None:                  # 50 speech keys, bias, the emotion key, the two lip-closure keys
        assert len(gltf.meshes[0].primitives[0].targets) == 54 and "hello" in [a.name for a in gltf.animations]
    assert all((out / f"hello.{f}").stat().st_size > 10000 for f in ("fbx", "abc", "usd"))


def test_batch_blender_dialogue_library_through_the_headless_script(m, shared_data, tmp_path):
    folder = shared_data.joinpath(*SUBJECT)
    out = tmp_path / "out"
    r = batch(folder, "--out", out, "--library", out / "dialogue.blend", *m, script=True, cache=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Saved" not in r.stdout, r.stdout[-2000:]           # Blender's save report stays out of the batch's lines
    names = sorted(results(out))
    assert names == ["sentence01", "sentence02", "sentence03", "sentence04"]
    bpy.ops.wm.open_mainfile(filepath=str(out / "dialogue.blend"))
    scene = bpy.context.scene
    (head,) = [o for o in scene.objects if o.type == "MESH"]
    tracks = head.data.shape_keys.animation_data.nla_tracks
    assert [t.name for t in tracks] == names and [t.strips[0].action.name for t in tracks] == names
    assert sorted(mk.name for mk in scene.timeline_markers) == names
    for track in tracks:                                        # each clip plays its .npz on the NLA
        strip = track.strips[0]
        with np.load(out / f"{track.name}.npz") as z:
            assert int(strip.frame_end - strip.frame_start) + 1 == len(z["weights"])
            got = evaluated_vertices(head, scene, int(strip.frame_start) + 20)
            assert np.abs(got - z["vertices"][20]).max() <= TOLERANCE
    if compat.HAS_AUDIO:
        assert len(compat.sequencer_strips(scene.sequence_editor)) == 4


def test_batch_blender_video_per_clip(m, shared_data, tmp_path):
    """``--format mp4``: each clip rendered with its sound (H.264 + AAC)."""
    wav = shared_data.joinpath(*SUBJECT) / "sentence01.wav"
    (tmp_path / "in").mkdir()
    os.symlink(wav, tmp_path / "in" / "take.wav")
    out = tmp_path / "out"
    r = batch(tmp_path / "in", "--out", out, "--format", "mp4", "--fps", "24", *m,   # 24 fps: fewer frames to render
              cache=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert results(out)["take"]["outputs"] == [str(out / "take.mp4")]
    sound = [("soun", "mp4a")] if compat.HAS_AUDIO else []      # bpy 4.2 from PyPI has no audio
    assert render.mp4_tracks(out / "take.mp4") == [("vide", "avc1")] + sound
