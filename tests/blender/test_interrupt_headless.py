"""SIGINT stops `batch --format npz,csv,blend` with exit 130 and one line, no traceback, every output on disk
a complete file — also when the batch was started with SIGINT ignored, as `batch … &` from a script starts
it (it then ran to its end and exited 0)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.core.test_batch_cli import ROOT, audio_folder, model_args, models  # noqa: E402,F401


def _whole(paths):
    """The outputs under their final names (pathlib's glob also lists hidden temporary files)."""
    return [p for p in paths if not p.name.startswith(".")]


def _background_job():
    os.nice(19)                                   # slow, so that the signal comes before the last clip
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a non-interactive shell does for `command &`


def test_interrupt_batch_with_blend_outputs_exits_130_and_keeps_only_whole_files(models, shared_data, tmp_path):
    folder = audio_folder(shared_data, tmp_path)
    out = tmp_path / "out"
    args = ["batch", folder, "--out", out, "--batch-size", "1", "--format", "npz,csv,blend", *model_args(models)]
    proc = subprocess.Popen([sys.executable, "-m", "voca_addon", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_background_job)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and not _whole(out.glob("*.blend")):
        time.sleep(0.02)                     # a first .blend is whole (not its hidden temporary twin)
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted" and "Traceback" not in err, err
    blends = sorted(_whole(out.glob("*.blend")))
    assert 1 <= len(blends) < 16, blends
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]     # no temporary file, no claim
    for npz in out.glob("*.npz"):                                            # what is there is whole
        with np.load(npz) as z:
            assert z["weights"].shape[1] == 50 and np.isfinite(z["weights"]).all()


_INTERRUPT_DURING_IMPORT = """
import os, signal, sys, threading
from voca_addon.cli import common
common.interruptible()
threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()   # Blender takes far longer to load
try:
    common.import_bpy("retarget")
except KeyboardInterrupt:
    print("interrupted; bpy loaded:", "bpy" in sys.modules, signal.getsignal(signal.SIGINT) is signal.default_int_handler,
          flush=True)
    from voca_addon.blender.compat import exit_now
    exit_now(130)
print("not interrupted", flush=True)
"""


def test_ctrl_c_while_blender_loads_arrives_after_it_loaded(tmp_path):
    """A Ctrl-C while the bpy module starts (a command's first seconds) is held until Blender has loaded, then
    raised as KeyboardInterrupt with the command's own handler back: the trial's interrupt inside Blender's
    start left a half-started Blender whose exit crashed (139) with the run's claim files on disk."""
    run = subprocess.run([sys.executable, "-c", _INTERRUPT_DURING_IMPORT], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 130, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "interrupted; bpy loaded: True True"   # (5.2 prints its OCIO)
    assert "Traceback" not in run.stderr
