"""Detection and forced alignment with PocketSphinx on the real recordings of ../shared/data/audio.

The transcripts are tests/core/phonemes/transcripts.json (how they were obtained is written there). The
reference for detection is the forced alignment of the transcript; the bilabials of test_sentence.wav
are checked against issue 18's table (phones force-aligned with PocketSphinx by the issue's author).
Bounds are the measured figures (docs/phonemes.md) with a margin of about one clip's worth.
"""
import json
import sys
import threading
from pathlib import Path

import pytest

from voca_addon.core.errors import InputError
from voca_addon.core.phonemes import PhonemesUnavailable, detector_available, phones_for_audio, \
    phones_in_process, read_alignment, transcript_for, write_alignment
from voca_addon.core.phonemes.scoring import BILABIALS, EMPTY, LABIODENTALS, score
from voca_addon.core.speech.audio import load_audio

pytest.importorskip("pocketsphinx", reason="pocketsphinx is not installed in this Python (requirements-dev.txt)")

CLIPS = json.loads((Path(__file__).with_name("transcripts.json")).read_text())["clips"]
SENTENCE = CLIPS["test_sentence.wav"]
# issue 18's table: bilabial onsets of test_sentence.wav (s), force-aligned with PocketSphinx
ISSUE_BILABIALS = [("M", 1.11), ("P", 1.44), ("B", 2.02), ("M", 3.71), ("P", 3.77)]


@pytest.fixture(scope="module")
def audio_dir(shared_data):
    return shared_data / "audio"


@pytest.fixture(scope="module")
def tracks(audio_dir):
    """(aligned, detected) for every clip."""
    out = {}
    for rel, text in CLIPS.items():
        clip = load_audio(audio_dir / rel)
        out[rel] = (phones_for_audio(clip, text), phones_for_audio(clip))
    return out


def test_alignment_finds_the_bilabials_of_issue_18(tracks):
    aligned, _ = tracks["test_sentence.wav"]
    assert aligned.source == "aligned" and aligned.warnings == ()
    found = [(p.phone, p.start) for p in aligned.of(*BILABIALS)]
    assert [p for p, _ in found] == [p for p, _ in ISSUE_BILABIALS]
    for (_, t), (_, expected) in zip(found, ISSUE_BILABIALS):
        assert abs(t - expected) <= 0.02, (found, ISSUE_BILABIALS)
    assert [p.word for p in aligned.of(*BILABIALS)] == ["myopia", "myopia", "contributed", "complex", "complex"]


def test_tracks_are_sorted_within_the_audio_and_in_arpabet(tracks, audio_dir):
    for rel, pair in tracks.items():
        duration = load_audio(audio_dir / rel).duration_s
        for track in pair:
            assert track.phones, rel
            for a, b in zip(track.phones, track.phones[1:]):
                assert a.start < a.end <= b.start + 1e-9, (rel, a, b)
            assert 0 <= track.phones[0].start and track.phones[-1].end <= duration + 1e-9
            assert all(p.phone.isalpha() and p.phone.isupper() for p in track.phones)


def test_detection_finds_the_aligned_bilabials_and_labiodentals(tracks):
    pooled = {"PBM": EMPTY, "FV": EMPTY}
    for rel, (aligned, detected) in tracks.items():
        if aligned.source != "aligned":
            continue
        pooled["PBM"] = pooled["PBM"].merged(score(detected, aligned, BILABIALS))
        pooled["FV"] = pooled["FV"].merged(score(detected, aligned, LABIODENTALS))
    pbm, fv = pooled["PBM"], pooled["FV"]
    assert pbm.reference >= 30 and fv.reference >= 20                  # enough to measure
    # measured (docs/phonemes.md, recogniser maxhmmpf 2000): P/B/M 28/32 found, 5/33 false; F/V 21/24 found,
    # 11/32 false (PocketSphinx's default search: 28/32, 5/33; 19/24, 11/30). The bounds
    # leave about one clip's worth (3 phones) of margin; issue 18's goal (>= 90 % found, <= 10 % false) is
    # not reached by detection alone (see the docs), so these guard the measured level, not the goal.
    assert pbm.found_rate >= 0.78, pbm
    assert pbm.false_rate <= 0.25, pbm
    assert fv.found_rate >= 0.65, fv
    assert fv.false_rate <= 0.47, fv
    assert max(pbm.errors) <= 0.1 and max(fv.errors) <= 0.1


def test_transcripts_that_match_are_aligned(tracks):
    sources = {rel: aligned.source for rel, (aligned, _) in tracks.items()}
    assert all(s == "aligned" for s in sources.values()), sources


def test_unknown_word_is_named_and_the_detector_fills_it(tracks):
    aligned, _ = tracks["vocaset/FaceTalk_170725_00137_TA/sentence04.wav"]
    assert aligned.source == "aligned"
    assert len(aligned.warnings) == 1 and "'suzie'd'" in aligned.warnings[0]
    words = [p.word for p in aligned.phones]
    assert "tenure" in words and "have" in words and "suzie'd" not in words
    gap = [p for p in aligned.phones if p.word == ""]            # the recogniser's phones between them
    end_tenure = max(p.end for p in aligned.phones if p.word == "tenure")
    start_have = min(p.start for p in aligned.phones if p.word == "have")
    assert gap and all(end_tenure - 1e-9 <= p.start and p.end <= start_have + 1e-9 for p in gap)


def test_a_transcript_without_one_known_word_is_detection_with_one_warning(tracks, audio_dir):
    """Found by a trial run: a transcript of made-up words was reported "(aligned)", its phones the phone
    recogniser's alone (the weaker detector); now it says why and gives the words detector's track."""
    clip = load_audio(audio_dir / "test_sentence.wav")
    track = phones_for_audio(clip, "qwxz plorkt zzvb")
    assert track.source == "detected" and len(track.warnings) == 1
    assert "no word of the transcript is in the pronouncing dictionary ('qwxz', 'plorkt', 'zzvb')" in track.warnings[0]
    _, detected = tracks["test_sentence.wav"]
    assert track.phones == detected.phones


def test_transcript_that_does_not_match_warns_once_then_detects(tracks, audio_dir):
    clip = load_audio(audio_dir / "test_sentence.wav")
    track = phones_for_audio(clip, "The quick brown fox jumps over the lazy dog.")
    assert track.source == "detected" and len(track.warnings) == 1
    assert "does not match the audio" in track.warnings[0]
    assert track.phones == tracks["test_sentence.wav"][1].phones


def test_empty_transcript_is_refused(audio_dir):
    for text in ("", "  ", " ... !"):
        with pytest.raises(InputError, match="transcript is empty"):
            phones_for_audio(audio_dir / "test_sentence.wav", text)


def test_phones_for_audio_is_thread_safe(audio_dir):
    rels = ["test_sentence.wav", "vocaset/FaceTalk_170725_00137_TA/sentence02.wav"]
    serial = {(rel, text is None): phones_for_audio(audio_dir / rel, text) for rel in rels
              for text in (CLIPS[rel], None)}
    results = {}

    def run(rel, text):
        results[rel, text is None] = phones_for_audio(audio_dir / rel, text)
    threads = [threading.Thread(target=run, args=(rel, text)) for rel in rels for text in (CLIPS[rel], None)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == serial


def test_without_pocketsphinx_one_line_and_files_still_work(monkeypatch, audio_dir, tmp_path):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)          # import pocketsphinx → ImportError
    ok, reason = detector_available()
    assert not ok and "\n" not in reason and "alignment file" in reason
    with pytest.raises(PhonemesUnavailable, match="PocketSphinx is not available") as err:
        phones_for_audio(audio_dir / "test_sentence.wav")
    assert "\n" not in str(err.value)
    with pytest.raises(PhonemesUnavailable):
        phones_for_audio(audio_dir / "test_sentence.wav", SENTENCE)
    path = tmp_path / "p.tsv"
    path.write_text("start\tend\tphone\tword\n1.11\t1.18\tM\tmyopia\n")
    assert read_alignment(path, duration=5.1).phones[0].phone == "M"


def test_transcript_for_reads_the_txt_beside_the_audio(tmp_path):
    wav = tmp_path / "clip.wav"
    assert transcript_for(wav) is None
    (tmp_path / "clip.txt").write_text("Don't ask me.\n", encoding="utf-8")
    assert transcript_for(wav) == "Don't ask me."
    for content in ("", " \n\t", " ... !"):          # no words: refused, naming the file
        (tmp_path / "clip.txt").write_text(content, encoding="utf-8")
        with pytest.raises(InputError, match=r"clip\.txt' beside the audio holds no words"):
            transcript_for(wav)


def test_detected_track_written_and_read_back(tracks, tmp_path):
    _, detected = tracks["test_sentence.wav"]
    back = read_alignment(write_alignment(detected, tmp_path / "d.TextGrid"), duration=5.11)
    assert [p.phone for p in back.phones] == [p.phone for p in detected.phones]


def test_phones_in_process_equal_and_errors_cross(audio_dir):
    wav = audio_dir / "test_sentence.wav"
    assert phones_in_process(wav, method="phones") == phones_for_audio(wav, method="phones")
    assert phones_in_process(wav, SENTENCE) == phones_for_audio(wav, SENTENCE)
    with pytest.raises(InputError, match="transcript is empty"):
        phones_in_process(audio_dir / "test_sentence.wav", " ")
