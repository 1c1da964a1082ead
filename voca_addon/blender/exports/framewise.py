"""Render a video one frame at a time, so Ctrl-C stops it within a frame and leaves no file behind.

Why: Blender's animation render (``bpy.ops.render.render(animation=True)``) is one C call. Under the bpy
module a Ctrl-C (Python's ``KeyboardInterrupt``) is raised only when that call returns, after the last
frame; under ``blender -b`` Ctrl-C sets an internal break flag that ends the render early and leaves a
truncated movie. Here:

1. **frames** — each frame is its own still render (PNG, RGB) into a hidden folder next to the destination;
   for the duration SIGINT raises ``KeyboardInterrupt`` in Python (:func:`interruptible`, both ways of
   running), so a Ctrl-C takes effect as soon as the frame being rendered is done;
2. **encode** — the frames become a temporary image strip on the top channel of the scene's sequencer and
   Blender's own FFmpeg writes the movie with the scene's sound strips mixed in (the same audio as an
   animation render); the strip, the sequencer switch and the view transform are put back afterwards
   (the frames already carry the scene's view transform, so the encode uses ``Standard``);
3. **quiet** (``quiet=True``, the headless commands) — Blender's own per-frame lines on standard output
   ("Fra:…", "Saved: …", "Append frame …", one or more per frame) are dropped while its render operator
   runs (:func:`silenced`: file descriptor 1 pointed at the null device), so the console shows the
   caller's progress instead;
4. **cleanup** — whatever happens (an error, Ctrl-C), the frames folder is deleted; the caller writes the
   movie under a temporary name and renames it only on success (:mod:`voca_addon.core.outputs`).

Contract: main thread only (``bpy``); the caller has set engine, resolution and the FFmpeg settings.
Units: scene frames.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import shutil
import signal
import threading
from typing import Callable, List, Optional

import bpy

from ...core.errors import InputError
from .. import compat

FRAME_NAME = "{:07d}.png"              # one file per scene frame in the hidden frames folder
STRIP_NAME = "VOCA frames (temporary)"
MAX_CHANNEL = 128                      # Blender's sequencer channels: 1 … 128
STDOUT_FD = 1                          # where Blender's C code prints, whatever sys.stdout is
FrameProgress = Optional[Callable[[int, int], None]]     # (frames done, frames in all)


@contextlib.contextmanager
def silenced(active: bool = True):
    """Drop everything written to file descriptor 1 (C code's ``printf`` and Blender's log lines included, not
    only Python's ``sys.stdout``) while inside; stderr stays. No-op when not ``active``."""
    if not active:
        yield
        return
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stdout.flush()
    _flush_c_stdout()                   # what C printed before goes where it was meant to
    saved, null = os.dup(STDOUT_FD), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, STDOUT_FD)
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stdout.flush()          # Blender's operator reports ("Info: Saved copy as TEMP") are written
        _flush_c_stdout()               # to sys.stdout (PySys_WriteStdout): both buffers empty into the null
        os.dup2(saved, STDOUT_FD)
        os.close(saved)
        os.close(null)


def _flush_c_stdout() -> None:
    """``fflush(NULL)`` of the C runtime Blender prints with. On a pipe (a batch, a test, CI) standard output is
    fully buffered, Python's ``sys.stdout`` and C's ``stdout`` alike: a line printed while silenced stayed in
    a buffer and came out after the descriptor was restored, or not, depending on how full the buffer was
    (Blender's "Info: Saved copy as TEMP" on a fresh machine, whose earlier output differed)."""
    with contextlib.suppress(AttributeError, OSError, TypeError):
        _c_runtime().fflush(None)


@functools.lru_cache(maxsize=1)
def _c_runtime():
    """The C runtime Blender prints with: this process's symbols (Linux, macOS), the UCRT on Windows (looked up
    once: ``find_library`` walks the PATH)."""
    import ctypes
    import ctypes.util
    if os.name == "nt":
        return ctypes.CDLL(ctypes.util.find_library("ucrtbase") or "ucrtbase")
    return ctypes.CDLL(None)


@contextlib.contextmanager
def interruptible():
    """SIGINT raises ``KeyboardInterrupt`` in Python while inside (Blender's background handler only sets a
    break flag that truncates a render). A previous Python-visible handler (the bpy module's, or SIG_DFL in
    Blender's UI) is put back after; Blender's own C handler (``blender -b``, seen as None) is not, so a
    later Ctrl-C there still ends in the caller's ``KeyboardInterrupt`` clean-up. No-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def render_frames(scene, folder: str, first: int, last: int, progress: FrameProgress = None,
                  quiet: bool = False) -> List[str]:
    """Render scene frames ``first`` … ``last`` (inclusive) as PNG files in ``folder``; returns their paths."""
    settings = scene.render.image_settings
    compat.set_output_format(settings, "PNG")
    settings.color_mode = "RGB"
    paths = []
    for frame in range(first, last + 1):
        scene.frame_set(frame)
        path = os.path.join(folder, FRAME_NAME.format(frame))
        scene.render.filepath = path
        with silenced(quiet):
            bpy.ops.render.render(write_still=True, scene=scene.name)
        if not os.path.isfile(path):
            raise InputError(f"Blender rendered nothing for frame {frame}; check the scene's camera.")
        paths.append(path)
        if progress is not None:
            progress(len(paths), last - first + 1)
    return paths


@contextlib.contextmanager
def _frames_strip(scene, frames: List[str], first: int):
    """A temporary image strip of ``frames`` from scene frame ``first``, on top of everything, seen by the
    render (sequencer on, view transform ``Standard``); all of it undone on exit."""
    created = scene.sequence_editor is None
    editor = scene.sequence_editor_create() if created else scene.sequence_editor
    top = max((s.channel for s in compat.all_sequencer_strips(editor)), default=0)
    if top >= MAX_CHANNEL:
        raise InputError(f"The scene's sequencer uses channel {MAX_CHANNEL}; free the top channel to render.")
    strips = compat.sequencer_strips(editor)
    strip = strips.new_image(name=STRIP_NAME, filepath=frames[0], channel=top + 1, frame_start=first)
    for path in frames[1:]:
        strip.elements.append(os.path.basename(path))
    view = scene.view_settings
    saved = (scene.render.use_sequencer, view.view_transform, view.look, view.exposure, view.gamma)
    try:
        scene.render.use_sequencer = True
        view.view_transform, view.look, view.exposure, view.gamma = "Standard", "None", 0.0, 1.0
        yield
    finally:
        strips.remove(strip)
        (scene.render.use_sequencer, view.view_transform, view.look, view.exposure, view.gamma) = saved
        if created:
            scene.sequence_editor_clear()


def frames_folder(movie_path: str) -> str:
    """A new folder for the frames beside ``movie_path``, named after its temporary (``TEMP.frames``), so the
    next run into the same movie removes it when a killed run left it (:func:`~voca_addon.core.outputs.sweep_leftovers`)."""
    from pathlib import Path
    from ...core import outputs
    temp = movie_path if outputs.is_temp(Path(movie_path)) else str(outputs.temp_name(Path(movie_path)))
    folder = temp + ".frames"
    os.mkdir(folder)
    return folder


def render_video_framewise(scene, movie_path: str, first: int, last: int, progress: FrameProgress = None,
                           quiet: bool = False) -> None:
    """Render ``first`` … ``last`` frame by frame, then encode them (and the sound strips) to ``movie_path``.

    The FFmpeg settings (container, codecs) must already be set on ``scene.render``; the image format is
    switched to PNG for the frames and back to FFMPEG for the encode. ``KeyboardInterrupt`` from Ctrl-C
    arrives between two frames; the frames folder is deleted in every case. ``quiet`` drops Blender's own
    standard-output lines (:func:`silenced`).
    """
    settings = scene.render.image_settings
    folder = frames_folder(movie_path)
    try:
        with interruptible():
            frames = render_frames(scene, folder, first, last, progress, quiet)
            with _frames_strip(scene, frames, first):
                compat.set_output_format(settings, "FFMPEG")
                scene.render.filepath = movie_path
                scene.frame_start, scene.frame_end = first, last
                with silenced(quiet):
                    bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def console_progress() -> FrameProgress:
    """``progress(done, total)`` for the headless commands: the CLI's progress bar on a terminal (stderr),
    else a line ``rendering frame n/N`` every 10 % on stdout (Blender's own lines being dropped)."""
    from ...core.progress import ProgressPrinter
    printer, step = ProgressPrinter(), {"next": 0.0}

    def progress(done: int, total: int) -> None:
        if printer.tty:
            printer(done / total, f"rendering {total} frames")
            if done == total:
                printer.close()
        elif done / total >= step["next"] or done == total:
            step["next"] = done / total + 0.1
            print(f"rendering frame {done}/{total}", flush=True)
    return progress
