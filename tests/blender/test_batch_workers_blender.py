"""``batch --workers 2`` with a Blender format, as a user runs it (``python -m voca_addon`` with the bpy module).

Found by a new-user trial: every clip failed with *No module named '_bpy'* — importing the bpy module puts
Blender's script folders (``bpy/5.0/scripts/modules``, which hold Blender's own Python ``bpy`` package) first
on ``sys.path``, a spawned worker starts with that ``sys.path`` and imported the package instead of the module.
No test ran a Blender format with more than one worker (the ``--workers`` tests are core tests, bpy blocked;
the Blender-format tests ran one process). The failed clips also left their ``.npz``, and the model warning
came twice as a raw Python warning.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("bpy")

from tests.blender.test_batch_blender import EXIT_SOME_FAILED, SUBJECT, batch, m, results  # noqa: E402,F401
from tests.blender.test_exports import read_glb  # noqa: E402
from tests.core.test_cli import NON_RELEASE  # noqa: E402


def test_batch_blender_two_workers_glb_and_a_failed_clip_leaves_nothing(m, shared_data, tmp_path):  # noqa: F811
    (tmp_path / "in").mkdir()
    for name, sentence in (("a", "sentence02"), ("b", "sentence03")):
        os.symlink(shared_data.joinpath(*SUBJECT) / f"{sentence}.wav", tmp_path / "in" / f"{name}.wav")
    out = tmp_path / "out"
    (out / "b.glb").mkdir(parents=True)                  # b's glb cannot be written: b fails after its .npz
    r = batch(tmp_path / "in", "--out", out, "--format", "npz,glb", "--workers", "2", "--batch-size", "1",
              "--no-closures", "--overwrite", *m, cache=tmp_path)
    assert r.returncode == EXIT_SOME_FAILED, r.stderr[-3000:]
    rows = results(out)
    assert rows["a"]["outcome"] == "ok", rows["a"]
    assert rows["b"]["outcome"] == "failed" and "_bpy" not in rows["b"]["error"], rows["b"]
    assert "\n" not in rows["b"]["error"] and "Traceback" not in rows["b"]["error"]
    assert not (out / "b.npz").exists() and rows["b"]["outputs"] == []          # a failed clip leaves nothing
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("a")) == ["a.glb", "a.npz"]
    # the model warning once, as the add-on's one line (the batch process says it; the workers keep quiet)
    assert r.stderr.count(NON_RELEASE) == 1 and "NonReleaseGraphWarning" not in r.stderr, r.stderr[-3000:]
    gltf = read_glb(out / "a.glb", required=False)
    if gltf is not None:
        with np.load(out / "a.npz") as z:
            assert len(gltf.meshes[0].primitives[0].targets) == len(z["names"]) + 1       # + the bias key
