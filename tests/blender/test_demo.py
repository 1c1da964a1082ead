"""The main job looks like a result: VOCA's texture on the head (UVs equal to texture_mesh.obj's), a skin
material without it, renders that show the texture's colours, the sound and image packed into the .blend,
``--npz`` in infer's layout, and a console without Blender's per-frame lines. Real FLAME / VOCA files
from ../shared/data (renders are written to tmp_path only, never committed)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import versions  # noqa: E402
from tests.blender.test_render import pixels  # noqa: E402
from voca_addon.blender.speech import material, writer  # noqa: E402
from voca_addon.blender import packing
from voca_addon.blender.exports import render
from voca_addon.core.errors import MeshError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIZE = (320, 240)
HAIR_RATIO = 1.4            # red / green of a pixel of the texture's red hair (skin stays below ~1.2)


@pytest.fixture
def tex_files(shared_data):
    return shared_data / "flame" / "texture_mesh.obj", shared_data / "flame" / "texture_mesh.png"


@pytest.fixture
def new_head(scene, flame):
    return writer.build_head("FLAME head", flame.vertices, flame.faces, scene.collection)


def obj_corner_uvs(path: Path) -> tuple:
    """(vt rows, faces as [(v, vt)] 1-based) from the OBJ's lines."""
    vts, faces = [], []
    for line in path.read_text().splitlines():
        if line.startswith("vt "):
            vts.append(tuple(float(x) for x in line.split()[1:3]))
        elif line.startswith("f "):
            faces.append([tuple(int(i) for i in c.split("/")[:2]) for c in line.split()[1:]])
    return vts, faces


def reddish_share(png) -> float:
    """Share of the image's pixels clearly red-orange (the texture's hair), rgb in 0..1."""
    rgb = pixels(png)[..., :3]
    return float(((rgb[..., 0] > HAIR_RATIO * rgb[..., 1]) & (rgb[..., 0] > 0.15)).mean())


def test_demo_texture_gives_the_head_the_objs_uvs_and_an_owned_image(new_head, tex_files):
    name = material.apply_head_look(new_head, tex_files)
    mesh = new_head.data
    layer = mesh.uv_layers[material.UV_NAME]
    assert len(layer.data) == len(mesh.loops) == 3 * 9976
    uv = np.empty(len(layer.data) * 2, np.float32)
    layer.data.foreach_get("uv", uv)
    uv = uv.reshape(-1, 2)
    vts, faces = obj_corner_uvs(tex_files[0])
    assert len(vts) == 5118
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    for loop in (0, 1, 2, 12345, 3 * 9976 - 1):
        (vt,) = [t for v, t in faces[loop // 3] if v - 1 == loops[loop]]
        assert tuple(uv[loop]) == pytest.approx(vts[vt - 1], abs=1e-6)
    mat = mesh.materials[0]
    assert mat.name == name == material.TEXTURED_NAME and mat.get(writer.OWNED) and material.is_textured(new_head)
    (image,) = [n.image for n in mat.node_tree.nodes if n.type == "TEX_IMAGE"]
    assert image.get(writer.OWNED) and tuple(image.size) == (512, 512)


def test_demo_rendered_still_shows_the_texture_colours(scene, new_head, tex_files, tmp_path):
    material.apply_head_look(new_head, tex_files)
    textured = render.render_still(scene, 1, tmp_path / "textured.png", resolution=SIZE, target=new_head)
    material.apply_head_look(new_head, None)                  # the same head with the plain skin
    skin = render.render_still(scene, 1, tmp_path / "skin.png", resolution=SIZE, target=new_head)
    assert reddish_share(textured) > 0.01 > 0.001 > reddish_share(skin)
    rgb = pixels(skin)[..., :3]
    head = rgb.max(-1) - rgb.min(-1) > 0.08                  # not the grey background
    assert head.mean() > 0.05 and (rgb[head, 0] > rgb[head, 2]).mean() > 0.9      # skin: warm, not grey


def test_demo_rerun_replaces_its_material_and_spares_an_artists(new_head, tex_files):
    material.apply_head_look(new_head, tex_files)
    material.apply_head_look(new_head, tex_files)
    assert [m.name for m in new_head.data.materials] == [material.TEXTURED_NAME]
    assert len([i for i in bpy.data.images if i.get(writer.OWNED)]) == 1
    assert material.remove_head_look(new_head) == 1
    assert not [m for m in bpy.data.materials if m.get(writer.OWNED)]
    assert not [i for i in bpy.data.images if i.get(writer.OWNED)]
    artist = bpy.data.materials.new("artist")
    new_head.data.materials.append(artist)
    assert material.apply_head_look(new_head, tex_files) is None
    assert list(new_head.data.materials) == [artist] and material.UV_NAME not in new_head.data.uv_layers


def test_demo_look_is_removed_with_the_head(new_head, tex_files, tmp_path):
    material.apply_head_look(new_head, tex_files)
    artist = bpy.data.materials.new("artist")                 # unused, but an artist's: never purged
    mesh = new_head.data
    bpy.data.objects.remove(new_head)
    bpy.data.meshes.remove(mesh)
    assert material.purge_unused() == (1, 1)
    assert not [m for m in bpy.data.materials if m.get(writer.OWNED)] and artist.name in bpy.data.materials
    assert not [i for i in bpy.data.images if i.get(writer.OWNED)]


def test_demo_look_has_no_fake_user_so_a_save_drops_it(new_head, tex_files, tmp_path):
    material.apply_head_look(new_head, tex_files)
    mesh = new_head.data
    bpy.data.objects.remove(new_head)
    bpy.data.meshes.remove(mesh)
    path = tmp_path / "no-head.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
    assert not [m for m in bpy.data.materials if m.get(writer.OWNED)]


def test_demo_texture_that_does_not_fit_is_refused_then_skin(new_head, tex_files, tmp_path):
    lines = tex_files[0].read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("f "))
    lines[first] = "f 1/1 2/2 3/3"                           # a triangle FLAME does not have
    broken = tmp_path / "texture_mesh.obj"
    broken.write_text("\n".join(lines))
    (tmp_path / "texture_mesh.png").symlink_to(tex_files[1])
    with pytest.raises(MeshError, match="not in FLAME's topology"):
        material.apply_head_look(new_head, (broken, tex_files[1]))
    assert not new_head.data.materials and not new_head.data.uv_layers            # nothing changed
    warning = material.dress_owned_head(new_head, tmp_path / "FLAME_sample.ply")
    assert "not in FLAME's topology" in warning and "skin material" in warning
    assert [m.name for m in new_head.data.materials] == [material.SKIN_NAME]


def test_demo_render_drops_blenders_frame_lines_when_quiet(scene, new_head, tmp_path, capfd):
    scene.frame_start, scene.frame_end = 1, 2
    render.render_video(scene, tmp_path / "loud.mp4", resolution=(64, 48), target=new_head)
    loud = capfd.readouterr().out
    render.render_video(scene, tmp_path / "quiet.mp4", resolution=(64, 48), target=new_head, quiet=True)
    quiet = capfd.readouterr().out
    assert "append frame" in loud.lower() and "Saved:" in loud   # what Blender prints per frame
    assert "append frame" not in quiet.lower() and "Saved:" not in quiet and (tmp_path / "quiet.mp4").stat().st_size


@pytest.fixture(scope="module")
def demo(voca_ckpt, ds_small_pb, shared_data, tmp_path_factory):
    """One headless run as `make demo` does it (frames 1-4 only, to keep it short)."""
    out = tmp_path_factory.mktemp("demo")
    command = [sys.executable, "-m", "voca_addon", "animate", str(shared_data / "audio" / "test.wav"),
               "--voca", str(voca_ckpt), "--deepspeech", str(ds_small_pb),
               "--template", str(shared_data / "flame" / "FLAME_sample.ply"),
               "--out", str(out / "demo.blend"), "--render", str(out / "demo.mp4"), "--frames", "1-4",
               "--npz", str(out / "demo.npz")]
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    env.update(VOCA_CACHE_DIR=str(out / "cache"), VOCA_MODEL_DIR=str(out / "no-models"))
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    return out, result


def test_demo_run_writes_blend_video_and_npz_with_stages_on_the_console(demo):
    out, result = demo
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["demo.blend", "demo.mp4", "demo.npz"]
    lines = result.stdout.splitlines()
    for stage in ("speech recognition (DeepSpeech)", "face motion (VOCA)", "writing the animation",
                  f"writing {out / 'demo.blend'}", "rendering frame 4/4", f"wrote {out / 'demo.mp4'}"):
        assert any(stage in line for line in lines), stage
    assert not [line for line in lines if "append frame" in line.lower() or line.startswith("Fra:") or "Saved" in line]
    assert ".part" not in result.stdout                         # no temporary name shown
    movie = bpy.data.images.load(str(out / "demo.mp4"))
    assert tuple(movie.size) == render.DEFAULT_RESOLUTION


def test_demo_npz_is_infers_layout_and_the_blends_animation(demo, evaluated):
    out, _ = demo
    with np.load(out / "demo.npz") as z:
        assert {"vertices", "basis", "bias", "weights", "template", "fps"} <= set(z.files)
        vertices, fps = z["vertices"], float(z["fps"])
        rebuilt = z["template"] + z["bias"] + np.einsum("fd,dvc->fvc", z["weights"][:3], z["basis"])
    assert fps == 60.0 and vertices.shape[1:] == (5023, 3) and vertices.dtype == np.float32
    assert np.abs(rebuilt - vertices[:3]).max() < 1e-5
    bpy.ops.wm.open_mainfile(filepath=str(out / "demo.blend"), load_ui=False)
    scene = bpy.context.scene
    (head,) = [o for o in scene.objects if o.type == "MESH"]
    assert scene.frame_end - scene.frame_start + 1 == len(vertices)
    for frame in (0, len(vertices) // 2, len(vertices) - 1):
        error = np.abs(evaluated(head, scene, scene.frame_start + frame) - vertices[frame]).max()
        assert error < 1e-5, f"frame {frame}: {error:.3g} m"


def test_demo_blend_is_textured_and_carries_its_sound_and_image(demo):
    out, _ = demo
    bpy.ops.wm.open_mainfile(filepath=str(out / "demo.blend"), load_ui=False)
    (head,) = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    assert material.is_textured(head) and len(head.data.uv_layers[material.UV_NAME].data) == 3 * 9976
    (image,) = [i for i in bpy.data.images if i.get(writer.OWNED)]
    assert image.packed_file is not None and image.packed_file.size > 0
    sounds = [s.sound for s in versions.strips(bpy.context.scene) if s.type == "SOUND"]
    if versions.compat.HAS_AUDIO:
        (sound,) = sounds
        assert sound.packed_file is not None and sound.packed_file.size > 0
    else:                                       # PyPI bpy 4.2: no sound strip, nothing to pack
        assert sounds == []
    assert packing.pack_owned() == 0            # everything already inside


def _animate(m_args, *extra, cwd=ROOT):
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    env.update(VOCA_CACHE_DIR=str(m_args["cache"]), VOCA_MODEL_DIR=str(m_args["cache"] / "no-models"))
    command = [sys.executable, "-m", "voca_addon", "animate", str(m_args["wav"]), "--voca", str(m_args["voca"]),
               "--deepspeech", str(m_args["ds"]), *[str(e) for e in extra]]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture
def m_args(voca_ckpt, ds_small_pb, shared_data, tmp_path_factory):
    return dict(voca=voca_ckpt, ds=ds_small_pb, wav=shared_data / "audio" / "test.wav",
                cache=tmp_path_factory.getbasetemp() / "demo-cache")


def test_demo_without_texture_files_the_head_gets_skin(m_args, shared_data, tmp_path):
    (tmp_path / "FLAME_sample.ply").symlink_to(shared_data / "flame" / "FLAME_sample.ply")   # no texture here
    result = _animate(m_args, "--template", tmp_path / "FLAME_sample.ply", "--out", tmp_path / "s.blend")
    assert result.returncode == 0, result.stderr
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "s.blend"), load_ui=False)
    (head,) = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    assert [m.name for m in head.data.materials] == [material.SKIN_NAME] and not material.is_textured(head)


@pytest.mark.parametrize("npz, fragment", [("anim.txt", "must end in .npz"), ("exists.npz", "already exists")])
def test_demo_npz_destination_is_checked_before_computing(m_args, shared_data, tmp_path, npz, fragment):
    (tmp_path / "exists.npz").write_bytes(b"mine")
    result = _animate(m_args, "--template", shared_data / "flame" / "FLAME_sample.ply",
                      "--out", tmp_path / "s.blend", "--npz", tmp_path / npz)
    assert result.returncode == 2 and fragment in result.stderr and npz in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.npz"]            # nothing written
    assert (tmp_path / "exists.npz").read_bytes() == b"mine"
