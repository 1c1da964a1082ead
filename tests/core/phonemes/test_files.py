"""Alignment files: Praat TextGrid (long and short formats, MFA's tiers), Rhubarb TSV/JSON, our JSON/TSV.

The files are written here by hand in each tool's documented layout, with values chosen here; every bad
input is refused with one InputError that names the problem.
"""
import json
import re

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


def short_textgrid(tiers, xmax):
    """A short-format TextGrid of interval tiers [(name, [(xmin, xmax, text), …])] (contiguous as given)."""
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", str(xmax), "<exists>", str(len(tiers))]
    for name, spans in tiers:
        out += ['"IntervalTier"', f'"{name}"', "0", str(xmax), str(len(spans))]
        out += [f'{a}\n{b}\n"{text}"' for a, b, text in spans]
    return "\n".join(out) + "\n"


TWO_SPEAKERS = [
    ("Alice - words", [(0, 0.2, ""), (0.2, 0.5, "mop"), (0.5, 2.0, "")]),
    ("Alice - phones", [(0, 0.2, ""), (0.2, 0.3, "M"), (0.3, 0.4, "AA1"), (0.4, 0.5, "P"), (0.5, 2.0, "")]),
    ("Bob - words", [(0, 1.0, ""), (1.0, 1.3, "five"), (1.3, 2.0, "")]),
    ("Bob - phones", [(0, 1.0, "sil"), (1.0, 1.1, "F"), (1.1, 1.2, "AY1"), (1.2, 1.3, "V"), (1.3, 2.0, "")]),
]


def test_textgrid_merges_every_speakers_phone_tier_each_with_its_own_words(tmp_path):
    """Found by a new-user trial: of MFA's multi-speaker tiers only the first speaker's phones were read,
    silently. VOCA animates one face from all the audio: every speaker's phones, in time order."""
    path = write(tmp_path, "two.TextGrid", short_textgrid(TWO_SPEAKERS, 2.0))
    track = read_alignment(path, duration=2.0)
    assert track.phones == (Phone("M", 0.2, 0.3, "mop"), Phone("AA", 0.3, 0.4, "mop"), Phone("P", 0.4, 0.5, "mop"),
                            Phone("F", 1.0, 1.1, "five"), Phone("AY", 1.1, 1.2, "five"), Phone("V", 1.2, 1.3, "five"))
    bob_first = [TWO_SPEAKERS[2], TWO_SPEAKERS[3], TWO_SPEAKERS[0], TWO_SPEAKERS[1]]   # tier order does not matter
    assert read_alignment(write(tmp_path, "b.TextGrid", short_textgrid(bob_first, 2.0))).phones == track.phones


def test_overlapping_speakers_are_refused_naming_both_tiers(tmp_path):
    tiers = list(TWO_SPEAKERS)
    tiers[3] = ("Bob - phones", [(0, 0.45, ""), (0.45, 0.6, "B"), (0.6, 2.0, "")])     # Bob's b during Alice's p
    with pytest.raises(InputError, match=r"two tiers are overlapping: tier 'Bob - phones' has B from 0\.45 s, "
                                         r"before P of tier 'Alice - phones' ends \(0\.5 s\).*one face"):
        read_alignment(write(tmp_path, "a.TextGrid", short_textgrid(tiers, 2.0)))


def test_an_empty_phone_tier_before_a_full_one_does_not_hide_it(tmp_path):
    """Found by a new-user trial: an empty 'phones' tier before the full one gave 0 phones."""
    tiers = [("phones", [(0, 1.5, "")]), ("words", [(0, 0.2, ""), (0.2, 0.8, "mop"), (0.8, 1.5, "")]),
             ("phones", [(0, 0.2, "sil"), (0.2, 0.35, "M"), (0.35, 0.6, "AA1"), (0.6, 0.8, "P"), (0.8, 1.5, "")])]
    track = read_alignment(write(tmp_path, "a.TextGrid", short_textgrid(tiers, 1.5)), duration=1.5)
    assert track.phones == EXPECTED[:3] and track.warnings == ()


def test_one_speakers_two_phone_tiers_give_the_first_not_both(tmp_path):
    """Found in review: a converter writing one speaker's phones twice ('phones' in ARPAbet, 'phonemes' in IPA)
    was refused as two overlapping tiers; the first phone tier that holds phones is that speaker's."""
    tiers = [("words", [(0, 0.2, ""), (0.2, 0.8, "mop"), (0.8, 1.5, "")]),
             ("phones", [(0, 0.2, "sil"), (0.2, 0.35, "M"), (0.35, 0.6, "AA1"), (0.6, 0.8, "P"), (0.8, 1.5, "")]),
             ("phonemes", [(0, 0.2, ""), (0.2, 0.35, "m"), (0.35, 0.6, "ɑ"), (0.6, 0.8, "p"), (0.8, 1.5, "")])]
    track = read_alignment(write(tmp_path, "a.TextGrid", short_textgrid(tiers, 1.5)), duration=1.5)
    assert track.phones == EXPECTED[:3]


def test_a_phone_with_no_length_left_at_the_audio_end_is_dropped(tmp_path):
    """Found by a new-user trial: M at 5.10–5.11 s for a 5.095 s clip (within the 20 ms tolerance) was kept as
    a zero-length M at 5.1 and written as an interval with xmax past the audio."""
    tiers = [("phones", [(0, 4.9, ""), (4.9, 5.105, "AA1"), (5.105, 5.11, "M")])]
    path = write(tmp_path, "a.TextGrid", short_textgrid(tiers, 5.11))
    track = read_alignment(path, duration=5.095)
    assert track.phones == (Phone("AA", 4.9, 5.095, ""),)
    out = write_alignment(track, tmp_path / "out.TextGrid", duration=5.095)
    assert "xmax = 5.11" not in out.read_text() and "xmax = 5.105" not in out.read_text()
    assert read_alignment(out, duration=5.095).phones == track.phones


@pytest.mark.parametrize("name,rhubarb", [("o.TextGrid", False), ("o.json", False), ("o.tsv", False),
                                          ("r.json", True), ("r.tsv", True)])
def test_writers_never_write_past_the_audio_duration_they_are_given(tmp_path, name, rhubarb):
    track = PhoneTrack((Phone("M", 1.0, 1.2, "me"), Phone("IY", 1.2, 1.31, "me"), Phone("P", 1.305, 1.32, "")),
                       "detected")
    out = write_alignment(track, tmp_path / name, duration=1.3, rhubarb=rhubarb)
    times = [float(t) for t in re.findall(r"\d+\.\d+", out.read_text())]
    assert max(times) <= 1.3, (name, out.read_text())
    back = read_alignment(out, duration=1.3)
    assert back.phones[-1].end == 1.3 and back.phones[0].start == 1.0
    if name.endswith(".TextGrid"):
        assert "xmax = 1.3\n" in out.read_text()


def test_rhubarb_tsv_times_going_backwards_name_the_line(tmp_path):
    """The message said 'the interval ends (1.0 s) before it starts (2.0 s)' about a file of cue times."""
    with pytest.raises(InputError, match=r"cue times go backwards at line 3 \(1\.0 s after 2\.0 s at line 2\)"):
        read_alignment(write(tmp_path, "r.tsv", "0.00\tX\n2.00\tA\n1.00\tB\n2.50\tX\n"))


def test_rhubarb_json_cue_without_end_is_named(tmp_path):
    """The message said 'the time None is not a finite number'."""
    data = {"mouthCues": [{"start": 0.0, "end": 0.2, "value": "X"}, {"start": 0.2, "value": "A"}]}
    with pytest.raises(InputError, match="mouth cue 2 has no 'end'"):
        read_alignment(write(tmp_path, "r.json", json.dumps(data)))


def test_binary_textgrid_says_save_it_as_text(tmp_path):
    """The message said the file 'ends early … not a complete Praat TextGrid'."""
    path = tmp_path / "b.TextGrid"
    path.write_bytes(b"ooBinaryFile\x08TextGrid" + bytes(range(40)))
    with pytest.raises(InputError, match=r"Praat's binary format.*save it as text \(Save as text file"):
        read_alignment(path)


def test_old_short_textgrid_header_reads_like_the_short_format(tmp_path):
    old = SHORT.replace('File type = "ooTextFile"\nObject class = "TextGrid"',
                        'File type = "ooTextFile short"\n"TextGrid"')
    assert read_alignment(write(tmp_path, "old.TextGrid", old)).phones == \
        read_alignment(write(tmp_path, "new.TextGrid", SHORT)).phones


def test_rhubarb_json_made_for_another_audio_length_warns_once(tmp_path):
    data = {"metadata": {"soundFile": "a.wav", "duration": 12.37},
            "mouthCues": [{"start": 0.0, "end": 0.2, "value": "X"}, {"start": 0.2, "end": 0.35, "value": "A"},
                          {"start": 0.35, "end": 5.1, "value": "X"}]}
    path = write(tmp_path, "r.json", json.dumps(data))
    track = read_alignment(path, duration=5.1)
    assert track.phones == (Phone("M", 0.2, 0.35, ""),)
    assert len(track.warnings) == 1 and "made for 12.37 s of audio, this audio is 5.10 s" in track.warnings[0]
    assert read_alignment(path).warnings == ()                     # the audio's length unknown: nothing to compare
    data["metadata"]["duration"] = 5.15
    assert read_alignment(write(tmp_path, "s.json", json.dumps(data)), duration=5.1).warnings == ()


def test_a_last_rhubarb_tsv_cue_starting_at_the_audio_end_has_no_length_left(tmp_path):
    """Like a TextGrid phone cut to nothing at the audio's end: left out, not stretched 0.1 s past it."""
    track = read_alignment(write(tmp_path, "r.tsv", "0.00\tX\n4.90\tA\n5.10\tB\n"), duration=5.095)
    assert track.phones == (Phone("M", 4.9, 5.095, ""),) and track.warnings == ()
