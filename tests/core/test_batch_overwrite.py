"""``batch`` and the files already in DIR, Ctrl-C, and the messages a user reads (a new-user trial).

Found by the trial: a batch silently replaced the user's own ``DIR/alpha.npz`` and ``batch_summary.csv``
(every other command refuses an existing output without ``--overwrite``); an interrupt during the first
group left no ``batch_summary.json``; an exporter that caught Ctrl-C made the clip "failed" with a 5 KB
traceback and the batch went on; a clip that failed after its ``.npz`` was written left it there; a folder
INPUT was told to use "the CSV's 'alignment' column"; a stereo file speaking on channel 1 was told
``channel='mix'`` (the Python API's wording).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import wave

import numpy as np
import pytest

from tests.core.test_batch_cli import audio_folder, model_args, models, summary  # noqa: F401
from tests.core.test_cli import BLOCKER, ROOT, assert_user_error, cli
from voca_addon.cli.batch import command as batch, inputs as batch_inputs, processes, worker
from voca_addon.cli.batch.specs import ClipResult, GroupTask
from voca_addon.core.models import modelfiles

PRECIOUS = b"precious"


def listing(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_batch_refuses_files_it_would_replace_unless_overwrite(models, shared_data, tmp_path):
    folder = audio_folder(shared_data, tmp_path, count=2)
    name = batch_inputs.read_folder(folder, 3)[0].name                # the first clip
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{name}.npz").write_bytes(PRECIOUS)
    (out / "batch_summary.csv").write_bytes(PRECIOUS)
    before = listing(out)
    r = cli("batch", folder, "--out", out, *model_args(models))
    assert_user_error(r, f"'{out}' already holds files this batch would write ({name}.npz, batch_summary.csv)",
                      "--overwrite", "--resume")
    assert listing(out) == before                                       # nothing written, nothing replaced
    # --resume onto files no batch made (no manifest): refused too, --overwrite named
    r = cli("batch", folder, "--out", out, "--resume", *model_args(models))
    assert_user_error(r, "no batch_manifest.json", "--overwrite")
    assert listing(out) == before
    r = cli("batch", folder, "--out", out, "--overwrite", *model_args(models))
    assert r.returncode == 0, r.stderr
    assert (out / f"{name}.npz").read_bytes() != PRECIOUS and len(summary(out)) == 2
    # a finished batch run again without a flag: refused (its own files, but not resumed)
    before = listing(out)
    assert_user_error(cli("batch", folder, "--out", out, *model_args(models)), "already holds files")
    assert listing(out) == before
    r = cli("batch", folder, "--out", out, "--resume", *model_args(models))          # its own: carried on
    assert r.returncode == 0 and "2 already done" in r.stderr, r.stderr
    r = cli("batch", folder, "--out", out, "--resume", "--overwrite", *model_args(models))
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_batch_interrupted_in_its_first_group_leaves_a_summary(models, shared_data, tmp_path):
    """SIGINT before any group ended: exit 130 and a summary listing every clip as interrupted."""
    folder = audio_folder(shared_data, tmp_path, count=4)
    out = tmp_path / "out"
    code = BLOCKER + "import runpy, sys; sys.argv = ['voca_addon'] + sys.argv[1:]; " \
                     "runpy.run_module('voca_addon', run_name='__main__')"
    args = ["batch", folder, "--out", out, "--batch-size", "4", *model_args(models)]
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(19))
    deadline = time.monotonic() + 120
    while not (out / "batch_manifest.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "error: interrupted", err
    with open(out / "batch_summary.json") as f:
        table = json.load(f)
    assert table["clips"] == 4 and table["interrupted"] == 4, table
    assert not list(out.glob("*.npz"))


@pytest.fixture
def group(models, shared_data, tmp_path):
    """One clip's group, run in this process (npz then csv, no phone pass)."""
    wav = shared_data / "audio" / "test_sentence.wav"
    from voca_addon.cli.batch.inputs import ClipSpec
    (tmp_path / "out").mkdir()
    return GroupTask((ClipSpec("take", str(wav)),), str(tmp_path / "out"), ("npz", "csv"),
                     str(modelfiles.resolve_voca(models["voca"])), str(models["ds"]), str(models["template"]),
                     cache=str(models["cache"]), closures=False)


def test_batch_export_that_swallows_ctrl_c_stops_the_batch_and_leaves_no_part(group, monkeypatch):
    """As Blender's glTF operator does: the KeyboardInterrupt caught, an export error raised instead."""
    def swallowing_export(anim, path):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass
        raise RuntimeError("Error: Python: Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                           "KeyboardInterrupt\n\nlocation: <unknown location>:-1")
    monkeypatch.setattr(worker, "write_csv", swallowing_export)
    with pytest.raises(KeyboardInterrupt), processes.recording_interrupts():
        worker.run_group(group)
    assert os.listdir(group.out_dir) == []                  # the clip's .npz, written first, removed


def test_batch_interrupted_group_keeps_the_clips_it_finished(group, monkeypatch):
    """Ctrl-C in a group's second clip: the first clip's files are whole and its result comes back with the
    interrupt (the summary said 'interrupted … before this clip was done' for it, with no outputs)."""
    import dataclasses
    from voca_addon.cli.batch.inputs import ClipSpec
    second = ClipSpec("second", group.clips[0].audio)
    task = dataclasses.replace(group, clips=group.clips + (second,))
    real = worker.write_csv

    def second_swallows(anim, path):
        if os.path.basename(path).startswith("second"):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        return real(anim, path)
    monkeypatch.setattr(worker, "write_csv", second_swallows)
    with pytest.raises(worker.GroupInterrupted) as stopped, processes.recording_interrupts():
        worker.run_group(task)
    (done,) = stopped.value.results
    assert done.name == "take" and done.outcome == "ok"
    assert sorted(os.listdir(group.out_dir)) == ["take.csv", "take.npz"]      # "second" left nothing
    assert sorted(os.path.basename(p) for p in done.outputs) == ["take.csv", "take.npz"]
    for name in os.listdir(group.out_dir):
        os.remove(os.path.join(group.out_dir, name))
    results = {}                                    # the batch process records it before it stops
    args = argparse.Namespace(input=group.clips[0].audio, workers=1)
    with pytest.raises(KeyboardInterrupt), processes.recording_interrupts():
        batch._execute(args, [task], None, list(task.clips), results, group.out_dir)
    assert list(results) == ["take"] and results["take"].outcome == "ok"


def test_batch_failed_clip_leaves_none_of_its_outputs_and_one_line(group, monkeypatch):
    def failing_export(anim, path):
        from voca_addon.core.errors import InputError
        raise InputError("glTF export: Python: Traceback (most recent call last):\n  File \"io.py\", line 3, "
                         "in save\n    x()\nValueError: no mesh\n\nlocation: <unknown location>:-1\n")
    monkeypatch.setattr(worker, "write_csv", failing_export)
    with processes.recording_interrupts():
        (result,) = worker.run_group(group)
    assert result.outcome == "failed" and result.outputs == []
    assert result.error == "glTF export: ValueError: no mesh"
    assert os.listdir(group.out_dir) == []


def test_batch_detection_hint_fits_the_input(capsys):
    for folder, said in ((True, "list the clips in a CSV INPUT with an 'alignment' column"),
                         (False, "give the clip an alignment file in the CSV's 'alignment' column")):
        batch.Progress(1, folder=folder).clip(ClipResult("a", "a.wav", "ok", phones=3, source="detected"))
        assert said in capsys.readouterr().err


def test_batch_help_lists_every_csv_column(capsys):
    with pytest.raises(SystemExit):
        from voca_addon.cli.main import main
        main(["batch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "audio (required), style, emotion, strength, name, transcript, alignment" in text and "--overwrite" in text


def test_batch_stereo_speaking_on_channel_1_says_what_a_batch_user_can_do(models, shared_data, tmp_path):
    with wave.open(str(shared_data / "audio" / "test_sentence.wav")) as w:
        rate, mono = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    (tmp_path / "in").mkdir()
    with wave.open(str(tmp_path / "in" / "right.wav"), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(np.column_stack([np.zeros_like(mono), mono]).tobytes())
    out = tmp_path / "out"
    r = cli("batch", tmp_path / "in", "--out", out, "--no-closures", *model_args(models))
    assert r.returncode == batch.EXIT_SOME_FAILED, r.stderr
    error = summary(out)["right"]["error"]
    assert "channel 0 is silent" in error and "--channel N|mix" in error and "channel='mix'" not in error
