"""Defects a new-user trial found in the commands that take a recording beside a motion, run as a user runs them
(real audio, VOCA's official output as the motion, bpy and tensorflow blocked unless a test needs the .blend):

* ``retarget --audio`` / ``import-sequence --audio`` took a recording of another length than the motion and keyed
  its closures (and sound) against it: now refused, one line naming both lengths, exit 2, nothing written;
  within two frames of the motion's length (animate / infer make round(seconds × fps) frames) it is accepted.
* ``phonemes`` / ``retarget`` / ``import-sequence`` told the user to choose ``--channel N|mix`` for a stereo file
  with speech on one channel, and did not accept ``--channel``: now each has it.
* Wording: ``retarget --target c.flac`` spoke of "the template"; ``--out /proc/x.npz`` said "not writable (No such
  file or directory)".
"""
import importlib.util
import os
import wave

import numpy as np
import pytest

from tests.core.test_cli import assert_user_error, infer_args, models  # noqa: F401 (fixture)
from tests.core.test_cli_articulation import ISSUE_BILABIALS, alignment_json, cli
from tests.core.test_cli_articulation2 import files_in, pairs, retarget_args, with_bpy  # noqa: F401 (fixture)

HAS_BPY = importlib.util.find_spec("bpy") is not None
NEEDS_BLENDER = "needs Blender"      # the refusal a run reaches past every input check when bpy is blocked


@pytest.fixture
def official(shared_data):
    """VOCA's official output for test_sentence.wav: 306 frames at 60 fps (5.100 s; the audio is 5.095 s)."""
    path = shared_data / "voca_official" / "output_test_sentence_cond3.npz"
    with np.load(path) as z:
        assert z["vertices"].shape[0] == 306 and float(z["fps"]) == 60.0
    return path


def cut(source, path, seconds, channels=None):
    """The first ``seconds`` of the WAV ``source`` into ``path``; ``channels``: a stereo file whose channel 0 is
    silent and channel 1 the speech."""
    with wave.open(str(source), "rb") as src:
        params, rate = src.getparams(), src.getframerate()
        data = np.frombuffer(src.readframes(int(round(seconds * rate))), np.int16)
    if channels == "right":
        data = np.stack([np.zeros_like(data), data], axis=1).ravel()
    with wave.open(str(path), "wb") as dst:
        dst.setparams(params._replace(nchannels=2 if channels else params.nchannels))
        dst.writeframes(data.tobytes())
    return path


# 1. a recording of another length than the motion

@pytest.mark.parametrize("seconds", [2.9, 0.4, 305 / 60 - 2.5 / 60])
def test_retarget_refuses_audio_of_another_length(models, shared_data, pairs, official, tmp_path, seconds):
    """Found by a trial run: a 2.9 s or 0.4 s wav with a 5.1 s motion was written with closures from that wav."""
    wav = cut(models["wav"], tmp_path / "other.wav", seconds)
    out, curves = tmp_path / "r.blend", tmp_path / "r.csv"
    before = files_in(tmp_path)
    r = cli(*retarget_args(models, shared_data, pairs, official, out, "--audio", wav, "--target-keys",
                           shared_data / "arkit" / "ARKit_blendshapes", "--curves", curves), cache=models["cache"])
    assert_user_error(r, f"--audio '{wav}' is {seconds:.3f} s long", "306 frames at 60 fps (5.100 s)",
                      "another clip")
    assert files_in(tmp_path) == before


def test_import_sequence_refuses_audio_of_another_length_where_phones_come_from_it(models, official, tmp_path):
    """Closures (detected, or from an alignment file of that recording) or --phonemes: refused. --no-closures:
    the audio is the sound strip only (a longer take may be meant): one warning, and the run goes on."""
    wav = cut(models["wav"], tmp_path / "other.wav", 2.9)
    given = alignment_json(tmp_path / "a.json", ISSUE_BILABIALS[:2])       # phones within the 2.9 s
    out = tmp_path / "s.blend"
    before = files_in(tmp_path)
    for extra in ((), ("--alignment", given), ("--no-closures", "--phonemes", tmp_path / "p.json")):
        r = cli("import-sequence", official, "--template", models["template"], "--audio", wav, "--out", out, *extra,
                cache=models["cache"])
        assert_user_error(r, "is 2.900 s long", "306 frames at 60 fps (5.100 s)")
        assert files_in(tmp_path) == before
    r = cli("import-sequence", official, "--template", models["template"], "--audio", wav, "--out", out,
            "--no-closures", cache=models["cache"])
    warned, refused = r.stderr.strip().splitlines()[-2:]
    assert warned.startswith("warning: --audio") and "is 2.900 s long" in warned and "the sound only" in warned
    assert r.returncode == 2 and NEEDS_BLENDER in refused     # went on to Blender (blocked here)


def test_audio_within_two_frames_of_the_motion_is_accepted(models, shared_data, pairs, official, tmp_path):
    """The tolerance: 306 frames at 60 fps take a recording of 304 .. 308 frames' length, two frames either way
    (animate / infer make round(seconds × 60) frames); 303.9 frames' length is refused. Accepted runs go on to
    Blender (blocked here)."""
    out = tmp_path / "s.blend"
    for frames, accepted in ((304.5, True), (303.9, False), (306, True)):
        wav = cut(models["wav"], tmp_path / f"{frames}.wav", frames / 60)
        r = cli("import-sequence", official, "--template", models["template"], "--audio", wav, "--out", out,
                cache=models["cache"])                  # closures on: a recording off by more is refused
        assert_user_error(r, NEEDS_BLENDER if accepted else "306 frames at 60 fps")
    r = cli(*retarget_args(models, shared_data, pairs, official, out, "--audio", models["wav"], "--no-closures"),
            cache=models["cache"])
    assert_user_error(r, NEEDS_BLENDER)       # the clip's own recording (5.095 s) passes, through the fit


# 2. --channel wherever the messages suggest it

@pytest.fixture
def right_only(models, tmp_path):
    return cut(models["wav"], tmp_path / "right_only.wav", 5.095, channels="right")


def test_phonemes_reads_the_channel_it_is_told(models, right_only, tmp_path):
    out = tmp_path / "p.json"
    r = cli("phonemes", right_only, "--out", out, cache=models["cache"])
    assert_user_error(r, "channel 0 of its 2 channels is silent", "--channel N|mix")
    assert not out.exists()
    r = cli("phonemes", right_only, "--channel", "1", "--out", out, cache=models["cache"])
    assert r.returncode == 0, r.stderr
    mono = cli("phonemes", models["wav"], "--out", tmp_path / "mono.json", cache=models["cache"])
    assert mono.returncode == 0, mono.stderr
    assert out.read_text() == (tmp_path / "mono.json").read_text()         # channel 1 holds the clip's speech
    r = cli("phonemes", right_only, "--channel", "2", "--out", tmp_path / "q.json", cache=models["cache"])
    assert_user_error(r, "channel 2 does not exist", "2 channel(s)")
    given = alignment_json(tmp_path / "given.json", ISSUE_BILABIALS)
    r = cli("phonemes", right_only, "--channel", "1", "--alignment", given, "--out", tmp_path / "a.json",
            cache=models["cache"])
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines() == [
        "warning: --channel 1 is not used: with --alignment the phones are read from the file, not detected"]
    assert not (tmp_path / "q.json").exists()


def test_every_command_that_suggests_channel_has_it(models):
    for command in ("phonemes", "retarget", "import-sequence", "infer", "animate", "features"):
        r = cli(command, "--help", cache=models["cache"])
        assert r.returncode == 0 and "--channel N|mix" in r.stdout, (command, r.stdout)


def test_retarget_and_import_sequence_read_the_channel_they_are_told(models, shared_data, pairs, official,
                                                                    right_only, tmp_path):
    """A silent channel 0 is refused before the fit (the message says --channel, which they now take); with
    --channel 1 the runs go on to Blender (blocked here); a channel that does not exist is refused."""
    out = tmp_path / "r.blend"
    before = files_in(tmp_path)
    runs = (retarget_args(models, shared_data, pairs, official, out, "--audio", right_only),
            ["import-sequence", official, "--template", models["template"], "--audio", right_only, "--out", out])
    for args in runs:
        assert_user_error(cli(*args, cache=models["cache"]), "channel 0 of its 2 channels is silent", "--channel")
        assert_user_error(cli(*args, "--channel", "3", cache=models["cache"]), "channel 3 does not exist")
        assert_user_error(cli(*args, "--channel", "1", cache=models["cache"]), NEEDS_BLENDER)
        assert files_in(tmp_path) == before


@pytest.mark.skipif(not HAS_BPY, reason="writing the .blend needs the bpy module")
def test_import_sequence_closes_the_lips_on_the_channel_given(models, official, right_only, tmp_path):
    out, phones = tmp_path / "s.blend", tmp_path / "s.json"
    r = with_bpy("import-sequence", official, "--template", models["template"], "--audio", right_only,
                 "--channel", "1", "--out", out, "--phonemes", phones, cache=models["cache"])
    assert r.returncode == 0, r.stderr
    assert "lip closures on" in r.stdout and out.is_file() and phones.is_file()


# 3. wording

def test_retarget_names_the_target_that_is_no_mesh(models, shared_data, pairs, official, tmp_path):
    flac = tmp_path / "c.flac"
    flac.write_bytes(b"fLaC\x00\x00\x00\x22" + bytes(64))
    r = cli("retarget", official, "--target", flac, "--landmarks", pairs, "--template", models["template"],
            "--out", tmp_path / "r.blend", cache=models["cache"])
    assert_user_error(r, f"--target '{flac}' is neither a PLY nor an OBJ mesh", "the character's head")
    assert "template" not in r.stderr and not (tmp_path / "r.blend").exists()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux's /proc")
def test_out_in_a_folder_that_takes_no_files_says_so(models):
    r = cli(*infer_args(models, "/proc/x.npz"), cache=models["cache"])
    assert_user_error(r, "cannot write '/proc/x.npz': the folder '/proc' takes no new files")
    assert "No such file or directory" not in r.stderr
