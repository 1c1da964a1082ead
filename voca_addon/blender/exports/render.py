"""Headless renders of the animated head: an MP4 with the scene's audio, or one PNG still.

:func:`render_video` writes MPEG-4 / H.264 video with AAC audio mixed from the scene's sound strips
(Blender's own FFmpeg muxes them; no ffmpeg binary is needed). :func:`render_still` writes one frame as
PNG. Both:

* frame the head with a camera and lights they create when the scene has none: a key light from
  above-left and a weaker fill light from below-right (``VOCA Light`` / ``VOCA Fill Light``). These carry the
  ``voca_owned`` tag (objects and their data) and are re-used; a scene without a world gets an owned
  ``VOCA World`` of neutral grey (the background; else it renders black). They are re-used
  and re-framed on the next run, so repeated renders never pile up objects; an artist's own camera
  (``scene.camera`` not owned) or light is used as it is and never moved;
* restore every render setting they change (engine, resolution, output path and format, frame range,
  current frame) when they return, so the scene's own settings survive; only the owned camera/light
  stay (and are saved with the scene if the caller saves afterwards);
* write atomically: the file is rendered under a temporary name in the destination folder and renamed
  into place; a failed render leaves no file.

Engines: ``WORKBENCH`` (fast; studio lighting, the head's texture when it has one
(:func:`..speech.material.is_textured`), else its material colour; measured 0.35 s per frame at the default 640×480
on 2 shared cores, rendering and encoding, in ``make demo``) and ``CYCLES`` (CPU, ``samples`` per pixel;
the key and fill lights matter there). EEVEE works in Blender but is not offered: it needs a GPU context and
is ~40 s per frame in software.

:func:`mp4_tracks` lists the tracks of an MP4 (handler and codec) by reading its atoms, so a caller can
check that the audio stream really was muxed.

Contract: main thread only (``bpy``). Imports ``bpy``, ``mathutils``, numpy and ``voca_addon.core``. Units:
pixels, scene frames, seconds. User errors raise :class:`~voca_addon.core.errors.InputError` before
anything is changed.
"""
from __future__ import annotations

import contextlib
import math
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ...core import outputs
from ...core.errors import InputError
from .. import compat
from . import framewise
from ..speech import material
from ..speech.writer import FLAME_VERTICES, OWNED

ENGINES = {"WORKBENCH": "BLENDER_WORKBENCH", "CYCLES": "CYCLES"}
CAMERA_NAME, LIGHT_NAME, FILL_NAME = "VOCA Camera", "VOCA Light", "VOCA Fill Light"
WORLD_NAME, WORLD_RGB = "VOCA World", (0.18, 0.19, 0.21)   # linear RGB: neutral grey background
LIGHT_ROLE = "voca_light_role"           # custom property of the owned fill light: "fill" (the key has none)
DEFAULT_RESOLUTION = (640, 480)          # pixels
LENS_MM, SENSOR_MM = 50.0, 36.0         # perspective camera: 50 mm lens on a 36 mm sensor
MARGIN = 1.15                            # framing headroom around the head's bounding box
MIN_SIZE, MAX_SIZE = 16, 8192            # pixels per side (H.264 needs even sizes)
CYCLES_SAMPLES = 16                      # default samples per pixel for CYCLES
SUN_STRENGTH = 2.5                       # W/m² of the owned sun light
SUN_ANGLE = math.radians(20)             # its angular diameter: soft shadows
SUN_TILT = (math.radians(20), math.radians(-25))   # above and left of the camera's line of sight
FILL_STRENGTH = 0.35 * SUN_STRENGTH      # the fill light: a third of the key, softer
FILL_ANGLE = math.radians(60)
FILL_TILT = (math.radians(-10), math.radians(35))  # below and right: lifts the key's shadows
FLAME_FORWARD, FLAME_UP = (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)   # a FLAME head's local front and up
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


@dataclass(frozen=True)
class RenderReport:
    """What :func:`render_video` wrote: ``path``, ``frames`` (first, last) inclusive, ``seconds`` of
    rendering, ``bytes`` of the file, ``tracks`` [(handler, codec)] of the MP4, and whether the camera /
    light were created by this call."""

    path: str
    frames: Tuple[int, int]
    seconds: float
    bytes: int
    tracks: tuple
    camera_created: bool
    light_created: bool

    @property
    def has_audio(self) -> bool:
        return any(handler == "soun" for handler, _ in self.tracks)

    @property
    def seconds_per_frame(self) -> float:
        return self.seconds / (self.frames[1] - self.frames[0] + 1)


def _check_common(engine: str, resolution, out_path: str, suffix: str) -> Tuple[str, int, int]:
    """Validate engine / resolution / destination → (Blender engine id, width, height)."""
    if str(engine).upper() not in ENGINES:
        raise InputError(f"Unknown render engine '{engine}'; choose {' or '.join(ENGINES)}.")
    try:
        width, height = (int(v) for v in resolution)
    except (TypeError, ValueError):
        raise InputError(f"Resolution {resolution!r} must be two whole numbers, e.g. 320x240.") from None
    if not (MIN_SIZE <= width <= MAX_SIZE and MIN_SIZE <= height <= MAX_SIZE) or width % 2 or height % 2:
        raise InputError(f"Resolution {width}x{height} is not usable: width and height must be even "
                         f"numbers from {MIN_SIZE} to {MAX_SIZE}.")
    if not out_path.lower().endswith(suffix):
        raise InputError(f"'{out_path}' must end in {suffix}.")
    folder = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(folder):
        raise InputError(f"Cannot write '{out_path}': the folder '{folder}' does not exist. Create it first.")
    return ENGINES[str(engine).upper()], width, height


def check_video_settings(out_path, engine: str = "WORKBENCH", resolution=DEFAULT_RESOLUTION) -> None:
    """Raise :class:`InputError` now for what :func:`render_video` would refuse (engine, size, path)."""
    _check_common(engine, resolution, os.path.abspath(os.fspath(out_path)), ".mp4")


def parse_resolution(text: str) -> Tuple[int, int]:
    """``"320x240"`` → (320, 240)."""
    width, sep, height = str(text).lower().partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        raise InputError(f"Resolution '{text}' must look like 320x240.") from None


def parse_frames(text: str) -> Tuple[int, int]:
    """``"10-20"`` → (10, 20); ``"7"`` → (7, 7)."""
    first, sep, last = str(text).partition("-")
    try:
        frames = (int(first), int(last) if sep else int(first))
    except ValueError:
        raise InputError(f"Frames '{text}' must look like 10-20 (first-last, inclusive).") from None
    return frames


# ---------------------------------------------------------------------------- camera and light

def _targets(scene, target) -> list:
    """The objects to frame: ``target``, else the scene's FLAME-sized meshes, else all visible meshes."""
    if target is not None:
        return [target]
    meshes = [o for o in scene.objects if o.type == "MESH" and o.visible_get()]
    heads = [o for o in meshes if len(o.data.vertices) == FLAME_VERTICES]
    return heads or meshes


def _world_corners(scene, objects) -> np.ndarray:
    """Bounding-box corners of the evaluated objects in world space, float64 [8·n, 3]."""
    depsgraph = scene.view_layers[0].depsgraph
    points = []
    for obj in objects:
        evaluated = obj.evaluated_get(depsgraph)
        matrix = np.array(evaluated.matrix_world)
        corners = np.array([tuple(c) for c in evaluated.bound_box], dtype=np.float64)
        points.append(corners @ matrix[:3, :3].T + matrix[:3, 3])
    return np.concatenate(points)


def _view_axes(objects) -> Tuple[Vector, Vector]:
    """(direction the face looks at, its up) in world space; FLAME's +Z / +Y of the first head."""
    head = next((o for o in objects if o.type == "MESH" and len(o.data.vertices) == FLAME_VERTICES), None)
    if head is None:
        return Vector((0.0, -1.0, 0.0)), Vector((0.0, 0.0, 1.0))
    basis = head.matrix_world.to_3x3()
    return (basis @ Vector(FLAME_FORWARD)).normalized(), (basis @ Vector(FLAME_UP)).normalized()


def _owned(scene, kind: str, role=None):
    return next((o for o in scene.objects if o.type == kind and o.get(OWNED) and o.get(LIGHT_ROLE) == role), None)


def _new_owned(scene, name: str, data):
    obj = bpy.data.objects.new(name, data)
    obj[OWNED] = data[OWNED] = True
    scene.collection.objects.link(obj)
    return obj


def frame_head(scene, width: int, height: int, target=None) -> Tuple[bool, bool]:
    """Make sure the scene has a camera and a light, framing the head with the owned ones.

    Returns (camera created, light created). A camera is created only when ``scene.camera`` is None and
    no owned camera exists; a light only when the scene holds no light. Owned ones are re-framed.
    """
    scene.view_layers[0].update()                       # fresh objects have no world matrix before this
    objects = _targets(scene, target)
    camera_created = light_created = False
    camera = scene.camera
    if camera is None:
        camera = _owned(scene, "CAMERA")
        if camera is None:
            camera = _new_owned(scene, CAMERA_NAME, bpy.data.cameras.new(CAMERA_NAME))
            camera_created = True
        scene.camera = camera
    light = _owned(scene, "LIGHT")
    if light is None and not any(o.type == "LIGHT" for o in scene.objects):
        light = _new_sun(scene, LIGHT_NAME, SUN_STRENGTH, SUN_ANGLE)
        light_created = True
    if scene.world is None:
        scene.world = bpy.data.worlds.new(WORLD_NAME)
        scene.world.color, scene.world[OWNED] = WORLD_RGB, True
    fill = _owned(scene, "LIGHT", "fill")
    if fill is None and light is not None and light.get(OWNED):
        fill = _new_sun(scene, FILL_NAME, FILL_STRENGTH, FILL_ANGLE)
        fill[LIGHT_ROLE] = "fill"
    if objects:
        _place(scene, camera if camera.get(OWNED) else None, light, objects, width, height)
        if fill is not None:
            _place(scene, None, fill, objects, width, height, FILL_TILT)
    return camera_created, light_created


def _new_sun(scene, name: str, strength: float, angle: float):
    light = _new_owned(scene, name, bpy.data.lights.new(name, "SUN"))
    light.data.energy, light.data.angle = strength, angle
    return light


def _place(scene, camera, light, objects, width: int, height: int, tilt_angles=SUN_TILT) -> None:
    """Point the owned camera at the face from the front; the owned sun shines from ``tilt_angles`` (above-left)."""
    forward, up = _view_axes(objects)
    right = up.cross(forward).normalized()                 # camera x; camera z = forward (looks at -z)
    up = forward.cross(right)
    corners = _world_corners(scene, objects)
    center = Vector(((corners.min(0) + corners.max(0)) / 2).tolist())
    rel = corners - np.array(center)
    half_w, half_h, half_d = (float(np.abs(rel @ np.array(axis)).max()) for axis in (right, up, forward))
    tan_h = SENSOR_MM / 2 / LENS_MM if width >= height else SENSOR_MM / 2 / LENS_MM * width / height
    tan_v = tan_h * height / width
    distance = max(half_w / tan_h, half_h / tan_v) * MARGIN + half_d
    look = Matrix((tuple(right), tuple(up), tuple(forward))).transposed()   # columns: camera x, y, z
    if camera is not None:
        camera.data.lens, camera.data.sensor_width, camera.data.sensor_fit = LENS_MM, SENSOR_MM, "AUTO"
        camera.data.clip_start, camera.data.clip_end = distance / 100, distance * 10
        camera.matrix_world = Matrix.Translation(center + forward * distance) @ look.to_4x4()
    if light is not None and light.get(OWNED):
        tilt = Matrix.Rotation(tilt_angles[0], 3, right) @ Matrix.Rotation(tilt_angles[1], 3, up)
        light.matrix_world = Matrix.Translation(center + forward * distance) @ (tilt @ look).to_4x4()


# ---------------------------------------------------------------------------- settings snapshot

_SETTINGS = (("render", ("engine", "filepath", "resolution_x", "resolution_y", "resolution_percentage",
                         "use_file_extension")),
             ("render.image_settings", compat.RENDER_FORMAT_SETTINGS),
             ("render.ffmpeg", ("format", "codec", "audio_codec", "audio_channels", "audio_mixrate",
                                "constant_rate_factor", "ffmpeg_preset")),
             ("", ("frame_start", "frame_end")),
             ("display.shading", ("light", "color_type")),
             ("view_settings", ("view_transform", "look")),
             ("cycles", ("samples", "device")))


@contextlib.contextmanager
def _restored_settings(scene):
    """Snapshot the render settings this module changes; put them back on exit."""
    saved, frame = [], scene.frame_current
    for path, names in _SETTINGS:
        owner = scene.path_resolve(path) if path else scene
        if path == "cycles" and not hasattr(scene, "cycles"):
            continue
        saved.append((owner, [(n, getattr(owner, n)) for n in names]))
    try:
        yield
    finally:
        for owner, values in saved:
            for name, value in values:
                with contextlib.suppress(TypeError, ValueError, AttributeError):
                    setattr(owner, name, value)
        scene.frame_set(frame)


def _configure(scene, engine: str, width: int, height: int, samples: int, target=None) -> None:
    """Engine, size, samples; Workbench: studio light, the texture's colours when the head has one."""
    render = scene.render
    shading = scene.display.shading
    heads = _targets(scene, target)
    shading.light = "STUDIO"
    if engine == "BLENDER_WORKBENCH":         # studio lighting is made for it; AgX / Filmic render it dim
        scene.view_settings.view_transform, scene.view_settings.look = "Standard", "None"
    shading.color_type = "TEXTURE" if any(material.is_textured(o) for o in heads) else "MATERIAL"
    render.engine = engine
    render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
    render.use_file_extension = True
    if engine == "CYCLES":
        scene.cycles.samples, scene.cycles.device = int(samples), "CPU"


def _render(scene, out_path: str, run=None, **kwargs) -> None:
    """Run Blender's render operator (or ``run(temp)``) into a temporary file beside ``out_path`` and rename
    it into place (:func:`voca_addon.core.outputs.write_exact`): a failed or interrupted render leaves
    nothing under ``out_path``."""
    def write(temp):
        scene.render.filepath = str(temp)
        try:
            if run is None:
                bpy.ops.render.render(scene=scene.name, **kwargs)
            else:
                run(str(temp))
        except RuntimeError as exc:
            raise InputError(f"Blender could not render '{out_path}': {str(exc).strip()}") from None
        if not os.path.isfile(temp):
            raise InputError(f"Blender rendered nothing for '{out_path}'; check the scene's camera and range.")
    outputs.write_exact(Path(out_path), write)


def _sound_strips(scene) -> list:
    editor = scene.sequence_editor
    return [s for s in compat.all_sequencer_strips(editor) if s.type == "SOUND" and not s.mute] if editor else []


def render_video(scene, out_path, frames: Optional[Tuple[int, int]] = None, engine: str = "WORKBENCH",
                 resolution=DEFAULT_RESOLUTION, target=None, samples: int = CYCLES_SAMPLES,
                 progress=None, quiet: bool = False) -> RenderReport:
    """Render ``frames`` (inclusive; default the scene's range) to an H.264 MP4 with AAC audio.

    Frame by frame (:mod:`voca_addon.blender.exports.framewise`): Ctrl-C stops it after the frame being rendered and leaves no file.
    ``progress(done, total)`` is called after each frame; ``quiet`` drops Blender's own per-frame lines on
    standard output (:func:`voca_addon.blender.exports.framewise.silenced`).

    Audio is the scene's sound-strip mix over the same frames (no audio track when there is no
    unmuted sound strip). ``target`` is the object to frame (default: the FLAME-sized meshes).

    Raises
    ------
    InputError
        Unknown engine, odd / out-of-range resolution, not ``.mp4``, missing folder, bad frame range,
        or a render Blender refused.
    """
    out_path = os.path.abspath(os.fspath(out_path))
    engine_id, width, height = _check_common(engine, resolution, out_path, ".mp4")
    first, last = (scene.frame_start, scene.frame_end) if frames is None else (int(frames[0]), int(frames[1]))
    if not 0 <= first <= last <= 1048574:
        raise InputError(f"Frame range {first}-{last} is invalid; use first-last with 0 ≤ first ≤ last.")
    audio = bool(_sound_strips(scene))
    with _restored_settings(scene):
        camera_created, light_created = frame_head(scene, width, height, target)
        _configure(scene, engine_id, width, height, samples, target)
        scene.frame_start, scene.frame_end = first, last
        settings = scene.render.image_settings
        compat.set_output_format(settings, "FFMPEG")
        ffmpeg = scene.render.ffmpeg
        ffmpeg.format, ffmpeg.codec, ffmpeg.constant_rate_factor = "MPEG4", "H264", "MEDIUM"
        ffmpeg.audio_codec = "AAC" if audio else "NONE"
        if audio:
            ffmpeg.audio_channels, ffmpeg.audio_mixrate = "STEREO", 48000
        started = time.perf_counter()
        _render(scene, out_path,        # frame by frame: Ctrl-C within a frame
                run=lambda temp: framewise.render_video_framewise(scene, temp, first, last, progress, quiet))
        seconds = time.perf_counter() - started
    return RenderReport(out_path, (first, last), seconds, os.path.getsize(out_path),
                        tuple(mp4_tracks(out_path)), camera_created, light_created)


def render_still(scene, frame: int, out_png, engine: str = "WORKBENCH", resolution=DEFAULT_RESOLUTION,
                 target=None, samples: int = CYCLES_SAMPLES) -> str:
    """Render scene frame ``frame`` to a PNG (RGBA); returns the absolute path written.

    Raises
    ------
    InputError
        As :func:`render_video` (``.png`` instead of ``.mp4``), or a frame outside 0 … 1048574.
    """
    out_png = os.path.abspath(os.fspath(out_png))
    engine_id, width, height = _check_common(engine, resolution, out_png, ".png")
    if not 0 <= int(frame) <= 1048574:
        raise InputError(f"Frame {frame} is outside Blender's frame range 0 … 1048574.")
    with _restored_settings(scene):
        frame_head(scene, width, height, target)
        _configure(scene, engine_id, width, height, samples, target)
        settings = scene.render.image_settings
        compat.set_output_format(settings, "PNG")
        settings.color_mode = "RGBA"
        scene.frame_set(int(frame))
        _render(scene, out_png, write_still=True)
    return out_png


# ---------------------------------------------------------------------------- MP4 inspection

def mp4_tracks(path) -> List[Tuple[str, str]]:
    """[(handler type, first sample-entry codec)] per track of an MP4, e.g. [('vide', 'avc1'),
    ('soun', 'mp4a')]; [] when the file has no readable ``moov`` atom. Standard library only."""
    with open(os.fspath(path), "rb") as handle:
        data = handle.read()
    tracks: List[Tuple[str, str]] = []

    def walk(start: int, end: int, track: Optional[list]) -> None:
        offset = start
        while offset + 8 <= end:
            size, kind = struct.unpack_from(">I4s", data, offset)
            header = 8
            if size == 1:
                size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
            elif size == 0:
                size = end - offset
            if size < header or offset + size > end:
                return
            body = offset + header
            if kind == b"trak":
                track = ["", ""]
                tracks.append(track)
            if kind in _CONTAINERS:
                walk(body, offset + size, track)
            elif kind == b"hdlr" and track is not None:
                track[0] = data[body + 8:body + 12].decode("latin-1")
            elif kind == b"stsd" and track is not None:
                track[1] = data[body + 12:body + 16].decode("latin-1")
            offset += size

    walk(0, len(data), None)
    return [tuple(t) for t in tracks]
