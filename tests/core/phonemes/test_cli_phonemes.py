"""``python -m voca_addon phonemes``, run as a user runs it (bpy and tensorflow blocked): each refusal is one
``error:`` line, exit 2, nothing written; without PocketSphinx, detection says so in one line and an
alignment file still converts."""
import json
import subprocess
import sys

import pytest

from tests.core.test_isolation import BLOCKER, ROOT

NO_SPHINX = "import sys; sys.modules['pocketsphinx'] = None\n"


def cli(*args, block_sphinx=False):
    code = BLOCKER + (NO_SPHINX if block_sphinx else "") + \
        "import runpy, sys; sys.argv = ['voca_addon'] + sys.argv[1:]; runpy.run_module('voca_addon', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def assert_refused(r, out, fragment):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.stderr
    assert not out.exists()


@pytest.fixture(scope="module")
def wav(shared_data):
    return shared_data / "audio" / "test_sentence.wav"


def test_phonemes_with_transcript_writes_textgrid(wav, tmp_path):
    pytest.importorskip("pocketsphinx")
    out = tmp_path / "p.TextGrid"
    r = cli("phonemes", wav, "--transcript", "Severe myopia contributed to Ron's inferiority complex.",
            "--out", out)
    assert r.returncode == 0, r.stderr
    assert "(aligned)" in r.stdout and r.stderr == ""
    assert 'name = "phones"' in out.read_text() and '"myopia"' in out.read_text()


def test_phonemes_transcript_that_does_not_match_warns_once_and_detects(wav, tmp_path):
    """Issue 18: a transcript the audio does not match is one warning line, then detection, exit 0 — the
    same phones as detection without a transcript."""
    pytest.importorskip("pocketsphinx")
    out, detected = tmp_path / "p.json", tmp_path / "d.json"
    r = cli("phonemes", wav, "--transcript", "The quick brown fox jumps over the lazy dog.", "--out", out)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: the transcript does not match the audio"), r.stderr
    assert "(detected by the US-English recogniser; for another language import an alignment file)" in r.stdout
    assert cli("phonemes", wav, "--out", detected).returncode == 0
    phones = json.loads(out.read_text())
    assert phones == json.loads(detected.read_text())
    assert [p["phone"] for p in phones if p["phone"] in ("P", "B", "M")] == ["M", "P", "B", "M", "P"]


def test_phonemes_transcript_txt_is_read_as_the_other_commands_read_it(wav, tmp_path):
    """``--transcript words.txt`` is the file's text (as animate / infer / retarget read it), not the name."""
    pytest.importorskip("pocketsphinx")
    text = tmp_path / "words.txt"
    text.write_text("Severe myopia contributed\nto Ron's inferiority complex.\n", encoding="utf-8")
    out = tmp_path / "p.json"
    r = cli("phonemes", wav, "--transcript", text, "--out", out)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "(aligned)" in r.stdout
    words = [p["word"] for p in json.loads(out.read_text())]
    assert "myopia" in words and "complex" in words
    missing = tmp_path / "absent.txt"
    assert_refused(cli("phonemes", wav, "--transcript", missing, "--out", out.with_suffix(".tsv")),
                   out.with_suffix(".tsv"), "absent.txt")


def test_phonemes_alignment_file_converts_without_pocketsphinx(wav, tmp_path):
    src = tmp_path / "in.tsv"
    src.write_text("0.00\tX\n1.11\tA\n1.18\tC\n1.44\tA\n1.54\tX\n")           # Rhubarb TSV
    out = tmp_path / "out.json"
    r = cli("phonemes", wav, "--alignment", src, "--out", out, block_sphinx=True)
    assert r.returncode == 0, r.stderr
    assert [p["phone"] for p in json.loads(out.read_text())] == ["M", "EH", "M"]


def test_phonemes_rhubarb_writes_mouth_cues_and_refuses_a_textgrid(wav, tmp_path):
    src = tmp_path / "in.json"
    src.write_text(json.dumps([{"phone": "M", "start": 1.11, "end": 1.18, "word": "myopia"},
                               {"phone": "AY", "start": 1.18, "end": 1.3, "word": "myopia"},
                               {"phone": "F", "start": 2.5, "end": 2.6, "word": "inferiority"}]))
    out = tmp_path / "cues.json"
    r = cli("phonemes", wav, "--alignment", src, "--out", out, "--rhubarb", block_sphinx=True)
    assert r.returncode == 0, r.stderr
    assert "Rhubarb mouth cues of 3 phones" in r.stdout
    cues = [(c["start"], c["end"], c["value"]) for c in json.loads(out.read_text())["mouthCues"]]
    assert cues[:4] == [(0.0, 1.11, "X"), (1.11, 1.18, "A"), (1.18, 1.3, "D"), (1.3, 2.5, "X")]
    assert cues[4] == (2.5, 2.6, "G") and cues[-1][2] == "X" and cues[-1][1] == pytest.approx(5.095045, abs=1e-6)   # the audio's end
    grid = tmp_path / "cues.TextGrid"
    assert_refused(cli("phonemes", wav, "--alignment", src, "--out", grid, "--rhubarb", block_sphinx=True),
                   grid, "written as .tsv or .json, not as a TextGrid")


def test_phonemes_without_pocketsphinx_is_one_line(wav, tmp_path):
    out = tmp_path / "p.json"
    assert_refused(cli("phonemes", wav, "--out", out, block_sphinx=True), out, "PocketSphinx is not available")


@pytest.mark.parametrize("case, fragment", [
    ("empty transcript", "transcript is empty"),
    ("bad extension", "must end in .json, .tsv or .TextGrid"),
    ("missing transcript file", "was not found"),
    ("textgrid without phones", "no phone tier"),
    ("past the end", "past the audio's end"),
    ("malformed json", "not valid JSON"),
    ("unknown alignment type", "unknown alignment file type"),
    ("overlapping", "overlapping"),
])
def test_phonemes_bad_input_is_refused(wav, tmp_path, case, fragment):
    out = tmp_path / "p.json"
    tg = ('File type = "ooTextFile"\nObject class = "TextGrid"\n0\n9\n<exists>\n1\n"IntervalTier"\n"{tier}"\n'
          '0\n9\n1\n0\n9\n"M"\n')
    files = {"textgrid without phones": ("a.TextGrid", tg.format(tier="words")),
             "past the end": ("a.TextGrid", tg.format(tier="phones")),
             "malformed json": ("a.json", "[{"),
             "unknown alignment type": ("a.lab", "0 1 M"),
             "overlapping": ("a.tsv", "start\tend\tphone\n0.1\t0.3\tM\n0.2\t0.4\tAA\n")}
    args = ["phonemes", wav, "--out", out]
    if case == "empty transcript":
        args += ["--transcript", " "]
    elif case == "bad extension":
        args[-1] = out = tmp_path / "p.txt"
    elif case == "missing transcript file":
        args += ["--transcript-file", tmp_path / "nope.txt"]
    else:
        name, text = files[case]
        (tmp_path / name).write_text(text)
        args += ["--alignment", tmp_path / name]
    assert_refused(cli(*args), out, fragment)
