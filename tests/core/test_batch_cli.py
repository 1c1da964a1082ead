"""``python -m voca_addon batch``, run as a user runs it (bpy and tensorflow blocked), on real VOCASET speech.

Every clip's .npz is checked against a one-clip run of the engine (:func:`voca_addon.core.engine.run`).
"""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.core.test_batch_recurrence import VERTEX_TOL, vocaset_clips
from tests.core.test_cli import BLOCKER, ROOT, assert_user_error, cli
from voca_addon.cli.batch import command as batch, inputs as batch_inputs
from voca_addon.core import engine
from voca_addon.core.emotion import emotions
from voca_addon.core.flame import meshio
from voca_addon.core.models import modelfiles

EXIT_SOME_FAILED = 4


@pytest.fixture(scope="module")
def models(voca_ckpt, ds_small_pb, shared_data, tmp_path_factory):
    cache = tmp_path_factory.mktemp("batch-cache")
    return dict(voca=voca_ckpt, ds=ds_small_pb, template=shared_data / "flame" / "FLAME_sample.ply", cache=cache)


def model_args(m):
    return ["--voca", m["voca"], "--deepspeech", m["ds"], "--template", m["template"], "--cache", m["cache"]]


@pytest.fixture(scope="module")
def one_clip(models):
    """A one-clip engine run of any audio file (the reference every batch output is compared with)."""
    ds = modelfiles.load_deepspeech(models["ds"], models["cache"])
    vm = modelfiles.load_voca(models["voca"], models["cache"])
    template = meshio.read_mesh(models["template"]).vertices
    return lambda wav, condition=3: engine.run(str(wav), ds, vm, template, condition).vertices()


def audio_folder(shared_data, tmp_path, count=None):
    """The VOCASET clips as INPUT/<subject>/<sentence>.wav (links), optionally only the first ``count``."""
    src = shared_data / "audio" / "vocaset"
    for wav in vocaset_clips(shared_data)[:count]:
        (tmp_path / "in" / wav.parent.name).mkdir(parents=True, exist_ok=True)
        os.symlink(wav, tmp_path / "in" / wav.parent.name / wav.name)
    assert src.is_dir()
    return tmp_path / "in"


def finished(out):
    """The complete .npz outputs in ``out`` (not the hidden temporary files being written)."""
    return [p for p in out.glob("*.npz") if not p.name.startswith(".")]


def summary(out):
    with open(out / "batch_summary.json") as f:
        return {r["name"]: r for r in json.load(f)["results"]}


def exact_vertices(z):
    """An output .npz's vertices without its lip corrections (closures are on by default; the exact VOCA
    result is what the one-clip engine run gives)."""
    if "correction_weights" not in z.files:
        return z["vertices"]
    return z["vertices"] - np.einsum("fc,cvk->fvk", z["correction_weights"], z["correction_basis"])


def assert_equal_to_one_clip(out, name, wav, one_clip, condition=3):
    with np.load(out / f"{name}.npz") as z:
        assert np.abs(exact_vertices(z) - one_clip(wav, condition)).max() <= VERTEX_TOL


def test_batch_corrupt_file_reported_and_the_rest_written(models, shared_data, tmp_path, one_clip):
    folder = audio_folder(shared_data, tmp_path, count=5)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20))
    out = tmp_path / "out"
    r = cli("batch", folder, "--out", out, "--format", "npz,csv", "--batch-size", "3", *model_args(models))
    assert r.returncode == EXIT_SOME_FAILED, r.stderr
    assert "Traceback" not in r.stderr and "corrupt: FAILED" in r.stderr and "ETA" in r.stderr
    rows = summary(out)
    assert rows["corrupt"]["outcome"] == "failed" and "corrupt.wav" in rows["corrupt"]["error"]
    good = [n for n in rows if n != "corrupt"]
    assert len(good) == 5 and all(rows[n]["outcome"] == "ok" for n in good)
    for name in good:                                       # e.g. FaceTalk_170725_00137_TA-sentence01
        assert rows[name]["outputs"] == [str(out / f"{name}.npz"), str(out / f"{name}.csv")]
        assert_equal_to_one_clip(out, name, rows[name]["audio"], one_clip)
        table = np.loadtxt(out / f"{name}.csv", delimiter=",", skiprows=1)
        with np.load(out / f"{name}.npz") as z:
            corrections = len(z["correction_names"]) if "correction_names" in z.files else 0   # lip keys last
            assert table.shape == (rows[name]["frames"], 2 + 50 + corrections)
            np.testing.assert_allclose(table[:, 2:52], z["weights"], rtol=1e-7, atol=1e-8)
    assert not (out / "corrupt.npz").exists() and not list(out.glob(".*"))    # no temporary leftovers
    with open(out / "batch_summary.csv") as f:
        assert sorted(r["outcome"] for r in csv.DictReader(f)) == ["failed"] + ["ok"] * 5


def test_batch_csv_styles_names_emotions(models, shared_data, tmp_path, one_clip):
    clips = vocaset_clips(shared_data)[:3]
    source = shared_data / "emotions" / "seed_emotion_offsets.npz"
    listing = tmp_path / "clips.csv"
    listing.write_text("audio,style,emotion,strength,name\n"
                       f"{clips[0]},1,,,first\n"
                       f"{os.path.relpath(clips[1], tmp_path)},\"2:0.5,5:0.5\",happy,0.8,second\n"
                       f"{clips[2]},9:x,,,broken_style\n"
                       f"{clips[2]},,,,\n")
    out = tmp_path / "out"
    r = cli("batch", listing, "--out", out, "--emotion-source", source, *model_args(models))
    assert r.returncode == EXIT_SOME_FAILED, r.stderr
    rows = summary(out)
    assert [rows[n]["outcome"] for n in ("first", "second", "broken_style", "sentence03")] == \
        ["ok", "ok", "failed", "ok"]
    assert "line 4 of the CSV" in rows["broken_style"]["error"] and "--style" in rows["broken_style"]["error"]
    assert_equal_to_one_clip(out, "first", clips[0], one_clip, 1)
    assert_equal_to_one_clip(out, "sentence03", clips[2], one_clip, 3)
    # 'second': its style blend, plus the emotion's delta eased 0 → 0.8 → 0 over the clip
    (happy,) = emotions.from_delta_file(source, names=["happy"])
    with np.load(out / "second.npz") as z:
        weight = z["weights"][:, -1]
        assert str(z["names"][-1]) == "emotion_happy" and weight[0] == 0 and weight[-1] == 0
        assert weight.max() == pytest.approx(0.8)
        plain = one_clip(clips[1], {2: 0.5, 5: 0.5})
        expected = plain + weight[:, None, None] * happy.delta[None]
        assert np.abs(exact_vertices(z) - expected).max() <= VERTEX_TOL


def test_batch_emotion_without_source_fails_that_clip(models, shared_data, tmp_path):
    listing = tmp_path / "clips.csv"
    wav = vocaset_clips(shared_data)[0]
    listing.write_text(f"audio,emotion,name\n{wav},happy,a\n{wav},,b\n")
    out = tmp_path / "out"
    r = cli("batch", listing, "--out", out, *model_args(models))
    assert r.returncode == EXIT_SOME_FAILED, r.stderr
    rows = summary(out)
    assert rows["a"]["outcome"] == "failed" and "--emotion-source" in rows["a"]["error"]
    assert rows["b"]["outcome"] == "ok"


def test_batch_resume_after_interruption_finishes_only_what_is_missing(models, shared_data, tmp_path, one_clip):
    folder = audio_folder(shared_data, tmp_path)
    out = tmp_path / "out"
    args = ["batch", folder, "--out", out, "--batch-size", "1", *model_args(models)]
    code = BLOCKER + "import runpy, sys; sys.argv = ['voca_addon'] + sys.argv[1:]; " \
                     "runpy.run_module('voca_addon', run_name='__main__')"
    # The batch runs at the lowest priority, so that on a busy machine this test sees the first clip
    # written and interrupts before the other 15 are done (a whole batch of small models takes ~2 s).
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=lambda: os.nice(19))
    deadline = time.monotonic() + 120
    while not finished(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)                         # Ctrl-C in the middle of the batch
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    first = {p.name: p.stat().st_mtime_ns for p in finished(out)}
    assert 1 <= len(first) < 16, sorted(first)
    r = cli("batch", folder, "--out", out, "--batch-size", "4", "--resume", *model_args(models))
    assert r.returncode == 0, r.stderr
    rows = summary(out)
    skipped = sorted(n for n, row in rows.items() if row["outcome"] == "skipped")
    assert [f"{n}.npz" for n in skipped] == sorted(first)
    assert sum(row["outcome"] == "ok" for row in rows.values()) == 16 - len(first)
    for name, mtime in first.items():                        # the finished clips were not written again
        assert (out / name).stat().st_mtime_ns == mtime
    for name, row in rows.items():
        assert_equal_to_one_clip(out, name, row["audio"], one_clip)


def test_batch_workers_give_the_same_results(models, shared_data, tmp_path, one_clip):
    folder = audio_folder(shared_data, tmp_path, count=6)
    out = tmp_path / "out"
    r = cli("batch", folder, "--out", out, "--workers", "2", *model_args(models))
    assert r.returncode == 0, r.stderr
    assert "6 clips, 0 already done, 2 groups" in r.stderr
    for name, row in summary(out).items():
        assert row["outcome"] == "ok"
        assert_equal_to_one_clip(out, name, row["audio"], one_clip)


def _cluster(tmp_path, scheduler_has_project=True):
    """A Dask scheduler and two one-thread workers on 127.0.0.1, started and stopped by the caller's test."""
    pytest.importorskip("distributed", reason="dask[distributed] is in requirements-dev.txt")
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([os.path.join(bin_dir, "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(file)],
                              cwd=ROOT if scheduler_has_project else tmp_path,
                              env=env if scheduler_has_project else bare,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([os.path.join(bin_dir, "dask"), "worker", address, "--nthreads", "1",
                                           "--no-dashboard", "--host", "127.0.0.1"], cwd=ROOT, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


@pytest.fixture
def dask_cluster(tmp_path):
    yield from _cluster(tmp_path)


def test_batch_dask_scheduler_without_the_project_is_named(models, shared_data, tmp_path):
    for address in _cluster(tmp_path, scheduler_has_project=False):   # started from another folder, no path
        out = tmp_path / "out"
        r = cli("batch", audio_folder(shared_data, tmp_path, count=1), "--out", out, "--scheduler", address,
                *model_args(models))
        assert_user_error(r, f"the Dask cluster at '{address}': the scheduler cannot import voca_addon",
                          f"PYTHONPATH={ROOT}")
        assert "workers" not in r.stderr.split("cannot import")[0]          # the workers have it
        assert not out.exists()


def test_batch_dask_cluster_gives_the_same_results(models, shared_data, tmp_path, one_clip, dask_cluster):
    folder = audio_folder(shared_data, tmp_path, count=5)
    shutil.copy(vocaset_clips(shared_data)[0], folder / "copy.wav")
    (folder / "corrupt.wav").write_bytes(b"not audio")
    out = tmp_path / "out"
    r = cli("batch", folder, "--out", out, "--scheduler", dask_cluster, "--batch-size", "2", *model_args(models))
    assert r.returncode == EXIT_SOME_FAILED, r.stderr
    rows = summary(out)
    assert rows["corrupt"]["outcome"] == "failed"
    ok = [n for n, row in rows.items() if row["outcome"] == "ok"]
    assert len(ok) == 6
    for name in ok:
        assert_equal_to_one_clip(out, name, rows[name]["audio"], one_clip)


def test_batch_refusals_write_nothing(models, shared_data, tmp_path):
    wav = vocaset_clips(shared_data)[0]
    out = tmp_path / "out"
    assert_user_error(cli("batch", tmp_path, "--out", out, *model_args(models)), "holds no clips")
    assert_user_error(cli("batch", wav, "--out", out, *model_args(models)), "folder of audio files or a .csv",
                      "it is a file but not a .csv")
    assert_user_error(cli("batch", tmp_path / "nowhere", "--out", out, *model_args(models)), "it was not found")
    listing = tmp_path / "dup.csv"
    listing.write_text(f"audio,name\n{wav},x\n{wav},x\n")
    assert_user_error(cli("batch", listing, "--out", out, *model_args(models)), "two clips are named 'x'")
    listing.write_text(f"file\n{wav}\n")
    assert_user_error(cli("batch", listing, "--out", out, *model_args(models)), "'audio' column")
    listing.write_text(f"audio\n{wav}\n")
    assert_user_error(cli("batch", listing, "--out", out, "--format", "npz,gif", *model_args(models)),
                      "choose from npz,csv")
    assert_user_error(cli("batch", listing, "--out", out, "--voca", tmp_path / "nothing", "--deepspeech",
                          models["ds"], "--template", models["template"]), "nothing.index")
    assert_user_error(cli("batch", listing, "--out", out, "--workers", "0", *model_args(models)), "--workers")
    assert_user_error(cli("batch", listing, "--out", out, "--format", "npz,glb", *model_args(models)),
                      "needs Blender")                      # bpy is blocked in these processes
    assert_user_error(cli("batch", listing, "--out", out, "--library", tmp_path / "d.blend", *model_args(models)),
                      "needs Blender")
    assert_user_error(cli("batch", listing, "--out", tmp_path / "no" / "out", *model_args(models)), "does not exist")
    assert_user_error(cli("batch", listing, "--out", out, "--scheduler", "tcp://127.0.0.1:1", *model_args(models)),
                      "cannot reach the Dask scheduler")
    assert not out.exists()


def test_batch_clip_names_are_file_safe():
    assert batch_inputs.clip_name("FaceTalk 1/sentence:01") == "FaceTalk_1_sentence_01"
    assert batch_inputs.clip_name("...") == "clip"


def test_batch_unwritable_output_fails_that_clip_only(models, shared_data, tmp_path):
    folder = audio_folder(shared_data, tmp_path, count=2)
    out = tmp_path / "out"
    names = sorted(batch_inputs.read_folder(folder, 3), key=lambda c: c.name)
    (out / f"{names[0].name}.npz").mkdir(parents=True)        # a folder where the file should go
    r = cli("batch", folder, "--out", out, "--overwrite", *model_args(models))     # (else refused up front)
    assert r.returncode == EXIT_SOME_FAILED, r.stderr
    rows = summary(out)
    assert rows[names[0].name]["outcome"] == "failed" and "directory" in rows[names[0].name]["error"].lower()
    assert rows[names[1].name]["outcome"] == "ok" and (out / f"{names[1].name}.npz").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
