"""Alignment files: Praat TextGrid (long and short formats, MFA's tiers), Rhubarb TSV/JSON, our JSON/TSV.

The files are written here by hand in each tool's documented layout, with values chosen here; every bad
input is refused with one InputError that names the problem.
"""
import json

import pytest

from voca_addon.core.errors import InputError
from voca_addon.core.phonemes import Phone, PhoneTrack, read_alignment, write_alignment

LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.5
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = ""
        intervals [2]:
            xmin = 0.2
            xmax = 0.8
            text = "mop"
        intervals [3]:
            xmin = 0.8
            xmax = 1.5
            text = "five"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.5
        intervals: size = 8
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = "sil"
        intervals [2]:
            xmin = 0.2
            xmax = 0.35
            text = "M"
        intervals [3]:
            xmin = 0.35
            xmax = 0.6
            text = "AA1"
        intervals [4]:
            xmin = 0.6
            xmax = 0.8
            text = "P"
        intervals [5]:
            xmin = 0.8
            xmax = 0.9
            text = "F"
        intervals [6]:
            xmin = 0.9
            xmax = 1.2
            text = "AY1"
        intervals [7]:
            xmin = 1.2
            xmax = 1.3
            text = "V"
        intervals [8]:
            xmin = 1.3
            xmax = 1.5
            text = ""
'''

SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
1.5
<exists>
1
"IntervalTier"
"phones"
0
1.5
4
0
0.2
"sp"
0.2
0.35
"m"
0.35
0.6
"ɑ"
0.6
1.5
"p"
'''

EXPECTED = (Phone("M", 0.2, 0.35, "mop"), Phone("AA", 0.35, 0.6, "mop"), Phone("P", 0.6, 0.8, "mop"),
            Phone("F", 0.8, 0.9, "five"), Phone("AY", 0.9, 1.2, "five"), Phone("V", 1.2, 1.3, "five"))


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_textgrid_long_format_reads_mfa_tiers(tmp_path):
    track = read_alignment(write(tmp_path, "a.TextGrid", LONG), duration=1.5)
    assert track.source == "textgrid" and track.phones == EXPECTED and track.warnings == ()


def test_textgrid_short_format_and_ipa_labels(tmp_path):
    track = read_alignment(write(tmp_path, "a.TextGrid", SHORT))
    assert track.phones == (Phone("M", 0.2, 0.35, ""), Phone("AA", 0.35, 0.6, ""), Phone("P", 0.6, 1.5, ""))


def test_textgrid_utf16_as_praat_writes_non_ascii(tmp_path):
    track = read_alignment(write(tmp_path, "a.TextGrid", LONG.replace('"five"', '"fünf"'), "utf-16"))
    assert track.phones[-1].word == "fünf"


def test_textgrid_without_phone_tier_is_refused(tmp_path):
    words_only = LONG.replace('name = "phones"', 'name = "syllables"')
    with pytest.raises(InputError, match=r"no phone tier.*'words'.*'syllables'"):
        read_alignment(write(tmp_path, "a.TextGrid", words_only))


def test_textgrid_truncated_is_refused(tmp_path):
    with pytest.raises(InputError, match="ends early"):
        read_alignment(write(tmp_path, "a.TextGrid", LONG[:LONG.index("intervals [5]")]))


def test_unknown_phone_label_is_refused_by_name(tmp_path):
    with pytest.raises(InputError, match="'ʘ' is not an ARPAbet phone"):
        read_alignment(write(tmp_path, "a.TextGrid", SHORT.replace('"m"', '"ʘ"')))


def test_overlapping_intervals_are_refused(tmp_path):
    rows = [{"phone": "M", "start": 0.1, "end": 0.3}, {"phone": "AA", "start": 0.25, "end": 0.4}]
    with pytest.raises(InputError, match="overlapping"):
        read_alignment(write(tmp_path, "a.json", json.dumps(rows)))


def test_unsorted_intervals_are_refused(tmp_path):
    text = "start\tend\tphone\tword\n0.5\t0.6\tM\tme\n0.1\t0.2\tIY\tme\n"
    with pytest.raises(InputError, match="unsorted"):
        read_alignment(write(tmp_path, "a.tsv", text))


def test_times_past_the_audio_end_are_refused(tmp_path):
    with pytest.raises(InputError, match="past the audio's end"):
        read_alignment(write(tmp_path, "a.TextGrid", LONG), duration=1.2)


def test_a_last_silence_past_the_audio_end_is_left_out(tmp_path):
    """Found by a trial run: an aligner's file whose last *silence* runs past the audio (its xmax padded)
    was refused like a phone would be. Its phones all lie within the audio: read, the silence left out."""
    track = read_alignment(write(tmp_path, "a.TextGrid", LONG), duration=1.31)   # "" runs 1.3 → 1.5 s
    assert track.phones == read_alignment(tmp_path / "a.TextGrid").phones and track.warnings == ()
    with pytest.raises(InputError, match="'V'|past the audio's end"):              # a phone past the end: no
        read_alignment(tmp_path / "a.TextGrid", duration=1.2)


def test_the_overlap_message_names_the_file_once(tmp_path):
    rows = [{"phone": "M", "start": 0.1, "end": 0.3}, {"phone": "AA", "start": 0.25, "end": 0.4}]
    path = write(tmp_path, "a.json", json.dumps(rows))
    with pytest.raises(InputError) as caught:
        read_alignment(path)
    assert str(caught.value).count(str(path)) == 1, caught.value


def test_malformed_json_and_tsv_are_refused(tmp_path):
    with pytest.raises(InputError, match="not valid JSON"):
        read_alignment(write(tmp_path, "a.json", '[{"phone": "M", "start": 0.1,'))
    with pytest.raises(InputError, match="'phone', 'start' and 'end'"):
        read_alignment(write(tmp_path, "b.json", '[{"phone": "M", "begin": 0.1, "end": 0.2}]'))
    with pytest.raises(InputError, match="not a time in seconds"):
        read_alignment(write(tmp_path, "c.tsv", "0.00\tX\nzero\tA\n"))
    with pytest.raises(InputError, match="column"):
        read_alignment(write(tmp_path, "d.tsv", "0.00\tX\tA\n"))
    with pytest.raises(InputError, match="not a Rhubarb mouth shape"):
        read_alignment(write(tmp_path, "e.tsv", "0.00\tX\n0.10\tQ\n"))
    with pytest.raises(InputError, match="empty"):
        read_alignment(write(tmp_path, "f.tsv", "\n"))


@pytest.mark.parametrize("name,text", [
    ("a.json", "[]"),
    ("b.tsv", "start\tend\tphone\tword\n"),                        # this add-on's TSV, its header only
    ("c.tsv", "0.00\tX\n"),                                          # Rhubarb: one rest cue
    ("d.json", '{"mouthCues": []}'),
    ("e.TextGrid", LONG.replace('"M"', '"sil"').replace('"AA1"', '""').replace('"P"', '"sp"')
     .replace('"F"', '""').replace('"AY1"', '""').replace('"V"', '""').replace('"sil"', '""')),
])
def test_a_well_formed_file_without_phones_is_an_empty_track_with_one_warning(tmp_path, name, text):
    """Found by a trial run: `[]` and a header-only TSV were read as 0 phones silently while a blank .tsv was
    refused. Every format alike now: a well-formed file without a phone is an empty track and one warning
    (a blank file is no alignment in any format: refused, above)."""
    path = write(tmp_path, name, text)
    track = read_alignment(path)
    assert track.phones == () and len(track.warnings) == 1, track
    assert name in track.warnings[0] and "holds no phones" in track.warnings[0]


def test_unknown_extension_is_refused(tmp_path):
    with pytest.raises(InputError, match="unknown alignment file type '.lab'"):
        read_alignment(write(tmp_path, "a.lab", "0 1 M"))
    with pytest.raises(InputError, match="unknown alignment file type"):
        write_alignment(PhoneTrack(EXPECTED, "json"), tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_rhubarb_tsv_maps_shapes_to_phone_classes(tmp_path):
    # Rhubarb's TSV: each cue holds until the next; A = closed lips, G = teeth on lip, X = rest
    text = "0.00\tX\n0.20\tA\n0.35\tC\n0.60\tG\n0.72\tX\n"
    track = read_alignment(write(tmp_path, "r.tsv", text), duration=1.0)
    assert track.source == "rhubarb"
    assert track.phones == (Phone("M", 0.2, 0.35, ""), Phone("EH", 0.35, 0.6, ""), Phone("F", 0.6, 0.72, ""))


def test_rhubarb_json_maps_shapes_to_phone_classes(tmp_path):
    data = {"metadata": {"soundFile": "a.wav", "duration": 1.0},
            "mouthCues": [{"start": 0.0, "end": 0.2, "value": "X"}, {"start": 0.2, "end": 0.35, "value": "A"},
                          {"start": 0.35, "end": 0.6, "value": "D"}, {"start": 0.6, "end": 0.72, "value": "G"},
                          {"start": 0.72, "end": 1.0, "value": "X"}]}
    track = read_alignment(write(tmp_path, "r.json", json.dumps(data)))
    assert [p.phone for p in track.phones] == ["M", "AA", "F"] and track.source == "rhubarb"


@pytest.mark.parametrize("suffix", [".tsv", ".json"])
def test_rhubarb_file_round_trip_gives_the_same_cues(tmp_path, suffix):
    """Rhubarb's cues read (shape → its class's phone) and written back as Rhubarb: the same cues."""
    cues = [(0.0, 0.2, "X"), (0.2, 0.35, "A"), (0.35, 0.5, "C"), (0.5, 0.6, "B"), (0.6, 0.72, "G"),
            (0.72, 0.8, "D"), (0.8, 0.9, "E"), (0.9, 1.05, "F"), (1.05, 1.2, "H"), (1.2, 1.4, "X"),
            (1.4, 1.5, "A"), (1.5, 2.0, "X")]
    if suffix == ".tsv":
        text = "".join(f"{s:.2f}\t{v}\n" for s, _e, v in cues)
    else:
        text = json.dumps({"metadata": {"soundFile": "a.wav", "duration": 2.0},
                           "mouthCues": [{"start": s, "end": e, "value": v} for s, e, v in cues]})
    track = read_alignment(write(tmp_path, "in" + suffix, text), duration=2.0)
    out = write_alignment(track, tmp_path / ("out" + suffix), duration=2.0, rhubarb=True)
    if suffix == ".tsv":
        lines = [line.split("\t") for line in out.read_text().splitlines()]
        assert [(float(t), v) for t, v in lines] == [(s, v) for s, _e, v in cues]
    else:
        written = json.loads(out.read_text())
        assert [(c["start"], c["end"], c["value"]) for c in written["mouthCues"]] == cues
        assert written["metadata"]["duration"] == 2.0
    assert read_alignment(out, duration=2.0) == track


def test_phones_written_as_rhubarb_cues_keep_the_closures(tmp_path):
    """Every ARPAbet phone has a shape; P/B/M → A and F/V → G at their times; same-shape neighbours merge."""
    from voca_addon.core.phonemes.files import PHONE_SHAPES
    from voca_addon.core.phonemes.track import ARPABET
    assert set(PHONE_SHAPES) == ARPABET
    track = PhoneTrack((Phone("M", 0.1, 0.2, "me"), Phone("IY", 0.2, 0.3, "me"), Phone("F", 0.5, 0.6, "feet"),
                        Phone("IY", 0.6, 0.7, "feet"), Phone("T", 0.7, 0.8, "feet"), Phone("B", 0.8, 0.9, "be")),
                       "aligned")
    out = write_alignment(track, tmp_path / "cues.tsv", duration=1.0, rhubarb=True)
    assert out.read_text() == ("0.000\tX\n0.100\tA\n0.200\tB\n0.300\tX\n0.500\tG\n0.600\tB\n"
                               "0.800\tA\n0.900\tX\n")
    back = read_alignment(out, duration=1.0)
    assert [(p.phone, p.start, p.end) for p in back.of("M", "F")] == [("M", 0.1, 0.2), ("F", 0.5, 0.6),
                                                                      ("M", 0.8, 0.9)]
    with pytest.raises(InputError, match="written as .tsv or .json, not as a TextGrid"):
        write_alignment(track, tmp_path / "cues.TextGrid", rhubarb=True)
    assert not (tmp_path / "cues.TextGrid").exists()


@pytest.mark.parametrize("suffix", [".json", ".tsv", ".TextGrid"])
def test_written_files_read_back(tmp_path, suffix):
    track = PhoneTrack(EXPECTED, "aligned")
    out = write_alignment(track, tmp_path / f"out{suffix}")
    back = read_alignment(out, duration=1.5)
    # the source names the format read (a trial run saw this add-on's .tsv labelled "(json)")
    assert back.source == {".json": "json", ".tsv": "tsv", ".TextGrid": "textgrid"}[suffix]
    assert back.label == back.source
    assert [(p.phone, p.word) for p in back.phones] == [(p.phone, p.word) for p in EXPECTED]
    for a, b in zip(back.phones, EXPECTED):
        assert abs(a.start - b.start) < 1e-6 and abs(a.end - b.end) < 1e-6
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]       # no temporary file left


def test_textgrid_times_are_written_to_the_microsecond_like_json_and_tsv(tmp_path):
    """Found by a trial run: the TextGrid writer printed float noise (xmax = 0.6900000000000001)."""
    phones = (Phone("M", 0.1, 0.6900000000000001, "me"), Phone("IY", 0.6900000000000001, 0.8, "me"))
    text = write_alignment(PhoneTrack(phones, "aligned"), tmp_path / "t.TextGrid").read_text()
    times = [line.split("=")[1].strip() for line in text.splitlines() if line.strip().startswith(("xmin", "xmax"))]
    assert "0.69" in times and all(len(t) <= 8 for t in times), times
    back = read_alignment(tmp_path / "t.TextGrid")
    assert [(p.phone, p.start, p.end) for p in back.phones] == [("M", 0.1, 0.69), ("IY", 0.69, 0.8)]


def test_our_json_is_the_documented_list(tmp_path):
    out = write_alignment(PhoneTrack(EXPECTED[:1], "aligned"), tmp_path / "p.json")
    assert json.loads(out.read_text()) == [{"phone": "M", "start": 0.2, "end": 0.35, "word": "mop"}]
