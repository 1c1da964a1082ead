"""Frame-by-frame video renders: the same picture as a still render, the scene given back unchanged, and
Ctrl-C during ``animate --render`` stopping within a frame with nothing written."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_render import pixels as rgba_pixels  # noqa: E402
from voca_addon.blender import compat  # noqa: E402
from voca_addon.blender.exports import framewise, render, sequences as sequence_io

ROOT = Path(__file__).resolve().parents[2]
SIZE = (160, 120)


def pixels(path) -> np.ndarray:
    """RGB float32 [H, W, 3] of an image file, or of a movie's first frame."""
    return rgba_pixels(path)[..., :3]


@pytest.fixture
def head(scene, shared_data):
    scene.render.fps = 60
    return sequence_io.import_sequence(scene, shared_data / "voca_official" / "output_test_sentence_cond3.npz",
                                       shared_data / "flame" / "FLAME_sample.ply",
                                       shared_data / "audio" / "test_sentence.wav").obj


def _animation_render(scene, movie_path, first, last, progress=None, quiet=False):
    """The reference: Blender's own one-call animation render, as render_video did before."""
    scene.render.filepath = movie_path
    scene.frame_start, scene.frame_end = first, last
    bpy.ops.render.render(animation=True, scene=scene.name)


def test_framewise_video_equals_blenders_animation_render_and_gives_the_scene_back(scene, head, tmp_path,
                                                                                   monkeypatch):
    scene.render.use_sequencer = False
    scene.view_settings.view_transform = "AgX"
    strips_before = [s.name for s in compat.all_sequencer_strips(scene.sequence_editor)]
    report = render.render_video(scene, tmp_path / "v.mp4", frames=(40, 42), resolution=SIZE)
    assert report.has_audio == compat.HAS_AUDIO                         # the sound strip, where Blender has audio
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]            # the frames folder is gone
    assert [s.name for s in compat.all_sequencer_strips(scene.sequence_editor)] == strips_before
    assert not scene.render.use_sequencer and scene.view_settings.view_transform == "AgX"
    monkeypatch.setattr(framewise, "render_video_framewise", _animation_render)
    render.render_video(scene, tmp_path / "reference.mp4", frames=(40, 42), resolution=SIZE)
    video, reference = pixels(tmp_path / "v.mp4"), pixels(tmp_path / "reference.mp4")
    np.testing.assert_array_equal(video, reference)                     # the same decoded picture
    still = pixels(render.render_still(scene, 80, tmp_path / "80.png", resolution=SIZE))
    assert np.abs(video - still).max() > 0.1                            # (another frame does differ)


def _frames_rendered(folder: Path) -> int:
    return sum(len([f for f in d.iterdir() if f.suffix == ".png"])
               for d in folder.glob(".voca-*.frames") if d.is_dir()) if folder.is_dir() else 0


def test_framewise_ctrl_c_stops_within_a_frame_and_writes_nothing(voca_ckpt, ds_small_pb, shared_data, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    command = [sys.executable, "-m", "voca_addon", "animate", str(shared_data / "audio" / "test_sentence.wav"),
               "--voca", str(voca_ckpt), "--deepspeech", str(ds_small_pb), "--template",
               str(shared_data / "flame" / "FLAME_sample.ply"), "--out", str(out_dir / "o.blend"),
               "--render", str(out_dir / "v.mp4"), "--frames", "1-300", "--resolution", "320x240"]
    env = dict(os.environ, VOCA_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        at_signal = 0
        while proc.poll() is None and at_signal < 3:
            at_signal = _frames_rendered(out_dir)
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        most = at_signal
        while proc.poll() is None:
            most = max(most, _frames_rendered(out_dir))
            time.sleep(0.005)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted"
    print(f"frames on disk at SIGINT: {at_signal}, at most afterwards: {most} (of 300)")
    assert most <= at_signal + 2, (at_signal, most)          # the frame in flight (and one racing the poll)
    assert list(out_dir.iterdir()) == []                      # no .blend, no video, no frames, no temporary


_C_PRINT = r"""
import ctypes, sys
sys.path.insert(0, sys.argv[1])
from voca_addon.blender.exports import framewise
libc = ctypes.CDLL(None)
libc.printf(b"before, shown\n")
print("before, shown (Python)")
with framewise.silenced():
    libc.printf(b"C: Saved copy as .voca-TEMP.part.blend\n")                    # Blender's C code
    sys.stdout.write("Info: Saved copy as .voca-TEMP.part.blend\n")           # its operator reports
libc.printf(b"after, shown\n")
print("after, shown (Python)")
sys.stdout.flush()
libc.fflush(None)
import os
os._exit(0)                     # not the interpreter's teardown: the PyPI bpy 4.5 module hangs in it
"""


@pytest.mark.skipif(sys.platform == "win32", reason="libc printf through ctypes.CDLL(None) is POSIX")
def test_silenced_drops_what_c_printed_inside_even_when_its_stdout_is_buffered():
    """On a pipe standard output is fully buffered (Python's and C's): a line printed while silenced must not
    come out after it (Blender's "Info: Saved copy as TEMP" did on a fresh machine, where the buffer filled
    at another moment), and lines before and after must."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}      # as in a user's shell
    done = subprocess.run([sys.executable, "-c", _C_PRINT, str(ROOT)], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stderr
    for line in ("before, shown\n", "before, shown (Python)", "after, shown\n", "after, shown (Python)"):
        assert line in done.stdout, done.stdout
    assert "Saved copy" not in done.stdout, done.stdout
