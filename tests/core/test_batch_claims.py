"""Two batches into one --out at once: the second is refused at once naming the first (it used to run too:
the manifest said style 1, the outputs were style 8, and a later --resume skipped them all as done)."""
import json
import os
import subprocess
import sys
import time

from tests.core.test_batch_cli import BLOCKER, ROOT, assert_user_error, audio_folder, cli, model_args, models  # noqa: F401
from voca_addon.core import claims


def test_batch_claims_one_batch_at_a_time_into_a_folder(models, shared_data, tmp_path):
    folder = audio_folder(shared_data, tmp_path, count=4)
    out = tmp_path / "out"
    code = BLOCKER + "import runpy, sys; sys.argv = ['voca_addon'] + sys.argv[1:]; " \
                     "runpy.run_module('voca_addon', run_name='__main__')"
    args = ["batch", folder, "--out", out, "--condition", "1", "--batch-size", "1", *model_args(models)]
    first = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(19))
    deadline = time.monotonic() + 120
    while not claims.claim_path(out).exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.poll() is None, "the first batch ended before it claimed its folder"
    second = cli("batch", folder, "--out", out, "--condition", "8", *model_args(models))
    assert_user_error(second, f"'{out}' is being written by another run: ", f"(process {first.pid} on ")
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    with open(out / "batch_manifest.json") as handle:
        manifest = json.load(handle)
    with open(out / "batch_summary.json") as handle:
        results = json.load(handle)["results"]
    assert manifest["made_for"]["style"] == 1 and len(results) == 4                     # the first batch's, whole
    assert all(r["outcome"] == "ok" for r in results)
    assert not claims.claim_path(out).exists()
    resumed = cli("batch", folder, "--out", out, "--condition", "8", "--resume", *model_args(models))
    assert_user_error(resumed, "style")                                   # made for style 1: refused
