"""Headless renders of the imported official VOCA sequence: stills that show the mouth move, and an MP4
whose audio stream is really muxed (checked by reading the container's atoms here, in pure Python)."""
from __future__ import annotations

import struct

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import versions  # noqa: E402

from bpy_extras.object_utils import world_to_camera_view  # noqa: E402

from voca_addon.blender.exports import render, sequences as sequence_io  # noqa: E402
from voca_addon.core.errors import InputError  # noqa: E402
from voca_addon.core.formats.safepickle import safe_load  # noqa: E402

SIZE = (240, 180)           # pixels: small, fast, still ~40 px across the mouth
MIDLINE = 0.005             # metres: lip vertices this close to the face's symmetry plane


@pytest.fixture(scope="module")
def lips(shared_data):
    return np.asarray(safe_load(shared_data / "flame" / "FLAME_masks.pkl")["lips"], dtype=np.int64)


@pytest.fixture(scope="module")
def official(shared_data):
    with np.load(shared_data / "voca_official" / "output_test_sentence_cond3.npz") as z:
        return z["vertices"]


def mouth_opening(vertices: np.ndarray, lips: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Per frame: mean height of the upper-lip midline vertices minus that of the lower lip (metres)."""
    mid = lips[np.abs(template[lips, 0]) < MIDLINE]
    centre = template[mid, 1].mean()
    upper, lower = mid[template[mid, 1] > centre], mid[template[mid, 1] <= centre]
    return vertices[:, upper, 1].mean(axis=1) - vertices[:, lower, 1].mean(axis=1)


@pytest.fixture
def head(scene, shared_data):
    scene.render.fps = 60
    return sequence_io.import_sequence(scene, shared_data / "voca_official" / "output_test_sentence_cond3.npz",
                                       shared_data / "flame" / "FLAME_sample.ply",
                                       shared_data / "audio" / "test_sentence.wav").obj


def pixels(path) -> np.ndarray:
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        width, height = image.size
        data = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(data)
    finally:
        bpy.data.images.remove(image)
    return data.reshape(height, width, 4)            # rows bottom-up, like camera-view coordinates


def region(scene, obj, indices, frame) -> tuple:
    """Pixel box (x0, x1, y0, y1) around the given vertices as the camera sees them at ``frame``."""
    scene.frame_set(frame)
    co = sequence_io.evaluated_frames(scene, obj, [frame])[0][indices]
    view = np.array([tuple(world_to_camera_view(scene, scene.camera, obj.matrix_world @ bpy_vec(c)))
                     for c in co])
    x, y = view[:, 0] * SIZE[0], view[:, 1] * SIZE[1]
    return int(x.min()) - 2, int(x.max()) + 3, int(y.min()) - 2, int(y.max()) + 3


def bpy_vec(c):
    from mathutils import Vector
    return Vector(tuple(float(v) for v in c))


@pytest.mark.smoke
def test_render_stills_show_the_mouth_open_and_closed(scene, head, lips, official, flame, tmp_path, shared_data):
    opening = mouth_opening(official, lips, flame.vertices)
    closed, wide = int(opening.argmin()) + 1, int(opening.argmax()) + 1      # scene frames start at 1
    assert opening.max() - opening.min() > 0.005                              # > 5 mm apart
    a = render.render_still(scene, closed, tmp_path / "closed.png", resolution=SIZE)
    b = render.render_still(scene, wide, tmp_path / "open.png", resolution=SIZE)
    img_a, img_b = pixels(a), pixels(b)
    assert img_a.shape == (SIZE[1], SIZE[0], 4)
    assert (img_a[..., 3] > 0.99).mean() > 0.05      # the head is there: opaque (4.5 writes 254/255)
    x0, x1, y0, y1 = region(scene, head, lips, wide)
    assert 10 < x1 - x0 < SIZE[0] / 2 and 5 < y1 - y0 < SIZE[1] / 2                   # a mouth-sized box
    mouth = np.abs(img_a[y0:y1, x0:x1, :3] - img_b[y0:y1, x0:x1, :3]).mean()
    forehead = np.asarray(safe_load(shared_data / "flame" / "FLAME_masks.pkl")["forehead"], np.int64)
    f0, f1, g0, g1 = region(scene, head, forehead, wide)
    still = np.abs(img_a[g0:g1, f0:f1, :3] - img_b[g0:g1, f0:f1, :3]).mean()
    assert mouth > 0.01 and mouth > 10 * still, (mouth, still)


def tracks(path) -> list:
    """[(handler, codec)] per 'trak' of an MP4: walk moov/trak/mdia/(hdlr, minf/stbl/stsd)."""
    data = open(path, "rb").read()

    def atoms(start, end):
        while start + 8 <= end:
            size, kind = struct.unpack(">I4s", data[start:start + 8])
            head = 8
            if size == 1:
                size, head = struct.unpack(">Q", data[start + 8:start + 16])[0], 16
            yield kind, start + head, start + (size or end - start)
            start += size or end - start

    def find(kind, start, end):
        return next(((b, e) for k, b, e in atoms(start, end) if k == kind), None)

    found = []
    for kind, body, end in atoms(*find(b"moov", 0, len(data))):
        if kind == b"trak":
            mdia = find(b"mdia", body, end)
            hdlr = find(b"hdlr", *mdia)
            stsd = find(b"stsd", *find(b"stbl", *find(b"minf", *mdia)))
            found.append((data[hdlr[0] + 8:hdlr[0] + 12], data[stsd[0] + 12:stsd[0] + 16]))
    return found


@pytest.mark.smoke
@versions.needs_audio
def test_render_video_muxes_the_sound_strip(scene, head, tmp_path):
    engine, file_format = scene.render.engine, scene.render.image_settings.file_format
    report = render.render_video(scene, tmp_path / "clip.mp4", frames=(1, 12), resolution=(160, 120))
    assert tracks(report.path) == [(b"vide", b"avc1"), (b"soun", b"mp4a")]
    assert report.has_audio and report.bytes > 1000 and report.frames == (1, 12)
    assert report.camera_created and report.light_created
    assert (scene.render.engine, scene.render.image_settings.file_format) == (engine, file_format)
    assert (scene.frame_start, scene.frame_end) == (1, 306)            # the range is given back
    again = render.render_video(scene, tmp_path / "clip.mp4", frames=(5, 7), resolution=(160, 120))
    assert not again.camera_created and not again.light_created
    assert sorted(o.type for o in scene.objects) == ["CAMERA", "LIGHT", "LIGHT", "MESH"]  # key + fill; nothing piled up
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]                      # no temporary left


def test_render_video_without_sound_has_video_only(scene, flame, tmp_path):
    from voca_addon.blender.speech import writer
    writer.build_head("FLAME", flame.vertices, flame.faces, scene.collection)
    scene.frame_start, scene.frame_end = 1, 3
    report = render.render_video(scene, tmp_path / "silent.mp4", resolution=(64, 48))
    assert tracks(report.path) == [(b"vide", b"avc1")] and not report.has_audio


def test_render_keeps_an_artists_camera(scene, head, tmp_path):
    camera = bpy.data.objects.new("Mine", bpy.data.cameras.new("Mine"))
    scene.collection.objects.link(camera)
    camera.location = (0.0, -5.0, 0.0)
    camera.rotation_euler = (np.pi / 2, 0.0, 0.0)
    scene.camera = camera
    render.render_still(scene, 1, tmp_path / "a.png", resolution=(64, 48))
    assert tuple(camera.location) == (0.0, -5.0, 0.0) and scene.camera == camera
    assert not [o for o in scene.objects if o.type == "CAMERA" and o != camera]


@pytest.mark.parametrize("kwargs,message", [
    (dict(resolution=(321, 240)), "even"),
    (dict(resolution=(8, 8)), "even numbers from"),
    (dict(engine="EEVEE"), "Unknown render engine"),
    (dict(frames=(20, 10)), "Frame range"),
])
def test_render_video_refuses_bad_settings(scene, head, tmp_path, kwargs, message):
    objects = len(bpy.data.objects)
    with pytest.raises(InputError, match=message):
        render.render_video(scene, tmp_path / "a.mp4", **kwargs)
    assert list(tmp_path.iterdir()) == [] and len(bpy.data.objects) == objects


def test_render_refuses_bad_destinations(scene, head, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        render.render_video(scene, tmp_path / "missing" / "a.mp4")
    with pytest.raises(InputError, match=r"\.mp4"):
        render.render_video(scene, tmp_path / "a.avi")
    with pytest.raises(InputError, match=r"\.png"):
        render.render_still(scene, 1, tmp_path / "a.jpg")
    assert list(tmp_path.iterdir()) == [] and scene.camera is None


def test_render_parsers():
    assert render.parse_resolution("320x240") == (320, 240)
    assert render.parse_frames("5-9") == (5, 9) and render.parse_frames("7") == (7, 7)
    with pytest.raises(InputError, match="320x240"):
        render.parse_resolution("big")
    with pytest.raises(InputError, match="10-20"):
        render.parse_frames("a-b")
