"""The lip-closure flags' defects a new-user trial found, run as a user runs the commands (real audio, the
tests' random-weight models): phones stored in an exact ``.npz`` are the clip's phones; an alignment file
given to ``--transcript`` is refused; ``--no-closures`` does not read ``AUDIO.txt``; each command's "needs
the audio" line names its own way to give it; ``phonemes --method`` with ``--alignment`` warns; help and
messages name the phone formats alike. Refusals: one line, exit 2, nothing written.

``retarget`` / ``import-sequence`` runs that write a ``.blend`` need the bpy module (skipped without it);
every refusal is checked with bpy and tensorflow blocked (it happens before Blender is needed)."""
import importlib.util
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.core.test_cli import NON_RELEASE, assert_user_error, infer_args, models  # noqa: F401 (fixture)
from tests.core.test_cli_articulation import ISSUE_BILABIALS, SENTENCE, alignment_json, cli
from tests.core.test_isolation import ROOT

HAS_BPY = importlib.util.find_spec("bpy") is not None
OTHER = (("F", 0.50, 0.58, "four"), ("V", 2.50, 2.58, "very"))   # an alignment unlike ISSUE_BILABIALS


def with_bpy(*args, cache):
    """``python -m voca_addon ARGS`` with the bpy module importable (retarget / import-sequence write a .blend)."""
    env = {"VOCA_CACHE_DIR": str(cache), "HOME": str(cache), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "voca_addon", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)


def files_in(folder):
    return sorted(p.name for p in folder.rglob("*"))


def phones_of(path):
    return [(p["phone"], p["start"], p["end"]) for p in json.loads(path.read_text())]


def expected(phones):
    return [(p, a, b) for p, a, b, _ in phones]


@pytest.fixture(scope="module")
def stored(models, tmp_path_factory):
    """``infer --no-closures --alignment``: VOCA's exact result with the alignment's 5 phones stored."""
    d = tmp_path_factory.mktemp("stored")
    given = alignment_json(d / "given.json", ISSUE_BILABIALS)
    out = d / "a.npz"
    r = cli(*infer_args(models, out, "--no-closures", "--alignment", given), cache=models["cache"])
    assert r.returncode == 0, r.stderr
    with np.load(out) as z:
        assert "correction_weights" not in z.files and list(z["phones"]) == [p[0] for p in ISSUE_BILABIALS]
    return out


@pytest.fixture
def pairs(tmp_path, shared_data):
    from voca_addon.core.character import landmarks as lm
    path = tmp_path / "pairs.txt"
    lm.write_pairs(path, np.loadtxt(shared_data / "arkit" / "FLAME_landmarks.txt", dtype=int),
                   np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int))
    return path


def retarget_args(models, shared_data, pairs, source, out, *extra):
    return ["retarget", source, "--target", shared_data / "arkit" / "ARKit_blendshapes" / "Neutral.obj",
            "--landmarks", pairs, "--template", models["template"], "--out", out, *extra]


# 1. phones stored in an exact .npz

@pytest.mark.skipif(not HAS_BPY, reason="writing the .blend needs the bpy module")
def test_import_sequence_uses_the_phones_an_exact_npz_stores(models, stored, tmp_path):
    """Found by a trial run: the stored (MFA) phones were replaced by phones detected from --audio."""
    seq = ["import-sequence", stored, "--template", models["template"], "--audio", models["wav"]]
    out, phonemes = tmp_path / "s.blend", tmp_path / "s.json"
    r = with_bpy(*seq, "--out", out, "--phonemes", phonemes, cache=models["cache"])
    assert r.returncode == 0, r.stderr
    assert "lip closures on 5 p/b/m" in r.stdout and "(json)" in r.stdout, r.stdout
    assert "phones stored in 'a.npz'" in r.stdout and "detected" not in r.stdout, r.stdout
    assert phones_of(phonemes) == expected(ISSUE_BILABIALS)
    # an explicit --alignment on an exact source still wins: new phones, new closures
    other = alignment_json(tmp_path / "other.json", OTHER)
    out2, phonemes2 = tmp_path / "o.blend", tmp_path / "o.json"
    r = with_bpy(*seq, "--alignment", other, "--out", out2, "--phonemes", phonemes2, cache=models["cache"])
    assert r.returncode == 0, r.stderr
    assert "stored in" not in r.stdout and phones_of(phonemes2) == expected(OTHER)


def test_phones_stored_past_the_end_of_the_audio_are_refused(models, stored, shared_data, tmp_path):
    """Found in review: the stored phones were not checked against --audio's length, as an alignment file's are;
    here the audio is the first 2 s of the clip, whose stored phones reach 3.83 s."""
    import wave
    with wave.open(str(shared_data / "audio" / "test_sentence.wav"), "rb") as src:
        params, frames = src.getparams(), src.readframes(2 * src.getframerate())
    short = tmp_path / "short.wav"
    with wave.open(str(short), "wb") as dst:
        dst.setparams(params)
        dst.writeframes(frames)
    out = tmp_path / "s.blend"
    r = cli("import-sequence", stored, "--template", models["template"], "--audio", short, "--out", out,
            cache=models["cache"])
    assert_user_error(r, "the phones stored in")
    assert "past the end of" in r.stderr and "another clip" in r.stderr and not out.exists()


@pytest.mark.skipif(not HAS_BPY, reason="writing the .blend needs the bpy module")
def test_retarget_uses_the_phones_an_exact_npz_stores(models, stored, shared_data, pairs, tmp_path):
    out, phonemes = tmp_path / "r.blend", tmp_path / "r.json"
    r = with_bpy(*retarget_args(models, shared_data, pairs, stored, out, "--audio", models["wav"],
                                "--phonemes", phonemes), cache=models["cache"])
    assert r.returncode == 0, r.stderr
    assert "5 phones (json, stored in 'a.npz'), lip closures on" in r.stdout, r.stdout
    assert "voca_lips_close" in r.stdout and "detected" not in r.stdout
    assert phones_of(phonemes) == expected(ISSUE_BILABIALS)


def test_a_corrected_source_still_refuses_new_phones(models, shared_data, pairs, tmp_path):
    """Kept: a source that carries corrections is never corrected twice (refuse_new_phones_for_corrected)."""
    corrected = tmp_path / "c.npz"
    given = alignment_json(tmp_path / "given.json", ISSUE_BILABIALS)
    assert cli(*infer_args(models, corrected, "--alignment", given), cache=models["cache"]).returncode == 0
    other = alignment_json(tmp_path / "other.json", OTHER)
    out = tmp_path / "r.blend"
    before = files_in(tmp_path)
    r = cli(*retarget_args(models, shared_data, pairs, corrected, out, "--audio", models["wav"],
                           "--alignment", other), cache=models["cache"])
    assert_user_error(r, "c.npz", "never corrected twice", "--alignment")
    assert files_in(tmp_path) == before


# 2. an alignment file given to --transcript

@pytest.mark.parametrize("name", ["mfa.TextGrid", "mfa.json", "mfa.tsv", "missing.json"])
def test_an_alignment_file_as_transcript_is_refused(models, tmp_path, name):
    """Found by a trial run: `--transcript mfa.TextGrid` was aligned as text ("does not match"), then detected."""
    from voca_addon.core.phonemes import PhoneTrack, write_alignment
    from voca_addon.core.phonemes.track import Phone
    path = tmp_path / name
    if not name.startswith("missing"):
        write_alignment(PhoneTrack(tuple(Phone(*p) for p in ISSUE_BILABIALS), "json"), path, 5.1)
    out = tmp_path / "t.npz"
    before = files_in(tmp_path)
    r = cli(*infer_args(models, out, "--transcript", path), cache=models["cache"])
    assert_user_error(r, f"--transcript '{path}' is an alignment file", f"give it as --alignment {path}")
    assert "%]" not in r.stderr and files_in(tmp_path) == before
    if name == "mfa.TextGrid":                         # the phonemes command's --transcript-file alike
        p = cli("phonemes", models["wav"], "--transcript-file", path, "--out", tmp_path / "p.json",
                cache=models["cache"])
        assert_user_error(p, "--transcript-file", "is an alignment file", "--alignment")
        assert files_in(tmp_path) == before


def test_text_ending_in_an_extension_stays_text(models, tmp_path):
    """Words that merely end in ".json" are what is said (read, then unused with --no-closures: one warning)."""
    out = tmp_path / "t.npz"
    r = cli(*infer_args(models, out, "--no-closures", "--transcript", "I saved it as notes.json"),
            cache=models["cache"])
    assert r.returncode == 0, r.stderr
    assert "warning: --transcript is not used" in r.stderr and out.is_file()


# 3. --no-closures does not read AUDIO.txt

def test_no_closures_does_not_read_the_txt_beside_the_audio(models, tmp_path):
    """Found by a trial run: an empty clip.txt refused `infer clip.wav --no-closures` (no phones are needed)."""
    wav = tmp_path / "clip.wav"
    shutil.copy(models["wav"], wav)
    (tmp_path / "clip.txt").write_text("")
    m = dict(models, wav=wav)
    out = tmp_path / "o.npz"
    r = cli(*infer_args(m, out, "--no-closures"), cache=models["cache"])
    assert r.returncode == 0, r.stderr
    assert not [line for line in r.stderr.splitlines() if line.startswith(("error", "warning")) and
                NON_RELEASE not in line], r.stderr
    with np.load(out) as z:
        assert "phones" not in z.files and "correction_weights" not in z.files
    # phones asked for (--phonemes): the beside-file is the transcript, so its emptiness is still refused
    before = files_in(tmp_path)
    r = cli(*infer_args(m, tmp_path / "p.npz", "--no-closures", "--phonemes", tmp_path / "p.json"),
            cache=models["cache"])
    assert_user_error(r, "clip.txt", "holds no words")
    assert files_in(tmp_path) == before


# 4. each command names its own way to give the audio

def test_infer_features_says_features_runs_have_no_audio(models, tmp_path):
    feats = tmp_path / "f.npz"
    assert cli("features", models["wav"], "--deepspeech", models["ds"], "--out", feats,
               cache=models["cache"]).returncode == 0
    given = alignment_json(tmp_path / "given.json", ISSUE_BILABIALS)
    out = tmp_path / "o.npz"
    before = files_in(tmp_path)
    r = cli("infer", "--features", feats, "--voca", models["voca"], "--template", models["template"],
            "--out", out, "--alignment", given, cache=models["cache"])
    assert_user_error(r, "lip closures need the audio file, which --features runs do not have", "--alignment",
                      "--no-closures", "run infer from AUDIO")
    assert "--audio" not in r.stderr and "AUDIO /" not in r.stderr
    assert files_in(tmp_path) == before


def test_retarget_and_import_sequence_name_their_audio_flag(models, shared_data, pairs, stored, tmp_path):
    given = alignment_json(tmp_path / "given.json", ISSUE_BILABIALS)
    out = tmp_path / "x.blend"
    before = files_in(tmp_path)
    for args in (retarget_args(models, shared_data, pairs, stored, out, "--alignment", given),
                 ["import-sequence", stored, "--template", models["template"], "--out", out, "--alignment", given]):
        r = cli(*args, cache=models["cache"])
        assert_user_error(r, "(--alignment) need the audio: give it with --audio WAV")
        assert "AUDIO /" not in r.stderr and "give AUDIO" not in r.stderr
        assert files_in(tmp_path) == before


# 5. phonemes --method with --alignment

def test_phonemes_method_with_alignment_warns_that_it_is_unused(models, tmp_path):
    given = alignment_json(tmp_path / "given.json", ISSUE_BILABIALS)
    out = tmp_path / "p.json"
    r = cli("phonemes", models["wav"], "--alignment", given, "--method", "phones", "--out", out,
            cache=models["cache"])
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines() == [
        "warning: --method phones is not used: with --alignment the phones are read from the file, not detected"]
    assert phones_of(out) == expected(ISSUE_BILABIALS)
    quiet = cli("phonemes", models["wav"], "--alignment", given, "--out", tmp_path / "q.json", cache=models["cache"])
    assert quiet.returncode == 0 and not quiet.stderr.strip(), quiet.stderr


# 6. help and messages name the formats alike

def test_help_and_messages_name_the_phone_formats_alike(models, tmp_path):
    for command in ("infer", "animate", "retarget"):
        r = cli(command, "--help", cache=models["cache"])
        assert r.returncode == 0, r.stderr
        assert "this add-on's .json/.tsv" in " ".join(r.stdout.split()), (command, r.stdout)
    r = cli("phonemes", "--help", cache=models["cache"])
    text = " ".join(r.stdout.split())
    assert "output .json, .tsv or .TextGrid" in text and "with --alignment it is not used" in text
    bad = tmp_path / "p.txt"
    r = cli("phonemes", models["wav"], "--out", bad, cache=models["cache"])
    assert_user_error(r, "--out", "must end in .json, .tsv or .TextGrid")
    r = cli(*infer_args(models, tmp_path / "o.npz", "--phonemes", bad), cache=models["cache"])
    assert_user_error(r, "--phonemes", "must end in .json, .tsv or .TextGrid")
    assert not bad.exists() and not (tmp_path / "o.npz").exists()
