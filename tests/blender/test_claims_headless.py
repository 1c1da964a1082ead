"""Two `animate` runs into one new --out at once: the second is refused at once with one line naming the
first (it used to exit 0 and silently replace the first's .blend and --npz); the first completes."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_headless import ROOT, animate_args, m  # noqa: E402,F401
from tests.core.test_cli import assert_user_error  # noqa: E402
from voca_addon.core import claims  # noqa: E402


def _env(m):
    env = dict(os.environ, VOCA_CACHE_DIR=str(m["cache"]), VOCA_MODEL_DIR=str(m["cache"] / "no-models"))
    env.pop("PYTHONPATH", None)
    return env


def test_claims_two_animate_runs_into_one_out(m, tmp_path):
    out, npz = tmp_path / "scene.blend", tmp_path / "scene.npz"
    args = [str(a) for a in animate_args(m, out, "--npz", npz)]
    first = subprocess.Popen([sys.executable, "-m", "voca_addon", *args], cwd=ROOT, env=_env(m),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not claims.claim_path(npz).exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert first.poll() is None, "the first run ended before its outputs were claimed"
    second = subprocess.run([sys.executable, "-m", "voca_addon", *args, "--overwrite"], cwd=ROOT, env=_env(m),
                            capture_output=True, text=True, timeout=300)
    assert_user_error(second, f"'{out}' is being written by another run: ", f"(process {first.pid} on ")
    out_first, err_first = first.communicate(timeout=600)
    assert first.returncode == 0, err_first
    with np.load(npz) as z:                                           # the first run's complete files
        assert z["weights"].shape[1] == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.blend", "scene.npz"]   # no claim left
