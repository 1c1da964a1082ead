"""A transcript of audio over 30 s, aligned piece by piece (core/phonemes/longalign.py, issue 18).

The long clip is real speech: the first 11 VOCASET sentences of ../shared/data/audio one after the other
(43 s, 3 pieces), with their transcripts joined. The reference is each sentence force-aligned alone with its
own transcript (≤ 5 s: the whole-alignment path), shifted by the sentence's offset in the clip.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from voca_addon.core.phonemes import Phone, phones_for_audio
from voca_addon.core.phonemes import longalign, segments, stage
from voca_addon.core.phonemes.scoring import BILABIALS, LABIODENTALS, score, word_starts
from voca_addon.core.speech.audio import Audio, load_audio, select_channel
from voca_addon.core.speech.resample import resample

CLIPS = json.loads((Path(__file__).with_name("transcripts.json")).read_text())["clips"]
LONG = sorted(rel for rel in CLIPS if rel.startswith("vocaset/"))[:11]


@pytest.fixture(scope="module")
def long_aligned(shared_data):
    """(the clip, its track aligned with the joined transcript, the sentences' own alignments shifted)."""
    pytest.importorskip("pocketsphinx")
    parts, reference, t, rate = [], [], 0.0, None
    for rel in LONG:
        audio = load_audio(shared_data / "audio" / rel)
        rate = rate or audio.rate
        assert audio.rate == rate
        own = phones_for_audio(audio, CLIPS[rel])
        assert own.source == "aligned"
        reference += [Phone(p.phone, t + p.start, t + p.end, p.word) for p in own.phones]
        mono = select_channel(audio, 0).samples
        parts.append(mono)
        t += len(mono) / rate
    clip = Audio(np.concatenate(parts), rate)
    assert 35.0 <= clip.duration_s <= 45.0
    track = phones_for_audio(clip, " ".join(CLIPS[rel] for rel in LONG))
    return clip, track, reference


def test_a_long_transcript_is_aligned_and_its_bilabials_match_each_sentence(long_aligned):
    clip, track, reference = long_aligned
    pieces = segments.split_points(resample(clip.samples, clip.rate, segments.RATE))
    assert len(pieces) >= 2                     # it did take the piecewise path
    assert track.source == "aligned"
    # the one word the dictionary lacks ("suzie'd", in sentence04) is named; nothing else is warned
    assert len(track.warnings) == 1 and "suzie'd" in track.warnings[0], track.warnings
    assert track.phones[-1].end <= clip.duration_s + 1e-6
    s = score(track, reference, BILABIALS)
    # measured: 16/16 found, none false, start differences 0-7 ms (the window is 100 ms)
    assert s.reference >= 12 and s.found == s.reference and s.false == 0, (s.found, s.reference, s.false, s.errors)
    f = score(track, reference, LABIODENTALS)
    assert f.found == f.reference and f.false == 0, (f.found, f.reference, f.false)


def test_every_word_starts_where_its_sentence_alone_puts_it(long_aligned):
    """Every transcript word, in order, starts within 100 ms of its start in its sentence's own alignment
    (a word shared out to the wrong piece would be squeezed in at the piece's edge and fail this)."""
    _, track, reference = long_aligned
    said, got = word_starts(reference), word_starts(track.phones)
    assert len(said) > 50 and [w for w, _ in got] == [w for w, _ in said]
    late = [(w, round(s1 - s0, 3)) for (w, s0), (_, s1) in zip(said, got) if abs(s1 - s0) > 0.1]
    assert not late, late


def test_share_words_follows_the_recogniser_and_keeps_missed_words_with_their_neighbours():
    words = "she had your dark suit in greasy wash water all year don't ask me to carry".split()
    recognised = [["she", "had", "her", "dark", "suit", "increase", "you", "watch", "water", "all"],
                  ["year", "don't", "ask", "me", "to", "carry"]]
    assert longalign.share_words(words, recognised) == [list(range(10)), list(range(10, 16))]
    # a word the recogniser missed at the cut goes with the word before it
    recognised = [["she", "had", "your", "dark", "suit"], ["greasy", "wash", "water"]]
    short = "she had your dark suit in greasy wash water".split()
    assert longalign.share_words(short, recognised) == [[0, 1, 2, 3, 4, 5], [6, 7, 8]]
    # a piece with nothing recognised (a pause) gets no words; the words stay in order
    recognised = [["she", "had", "your"], [], ["dark", "suit", "in"]]
    assert longalign.share_words(short[:6], recognised) == [[0, 1, 2], [], [3, 4, 5]]


def test_share_words_matches_in_bounded_windows(monkeypatch):
    """Two pieces at a time: the word matching's table never holds more than two pieces' words."""
    pieces = [[f"w{k % 3}_{i}" for i in range(25)] for k in range(12)]
    words = [w for piece in pieces for w in piece]
    sizes = []
    real = longalign.match_pieces

    def spy(window, recognised, sounds=None, cache=None):
        sizes.append(len(window) * sum(len(r) for r in recognised))
        return real(window, recognised, sounds, cache)

    monkeypatch.setattr(longalign, "match_pieces", spy)
    shares = longalign.share_words(words, pieces)
    assert shares == [list(range(25 * k, 25 * (k + 1))) for k in range(12)]
    assert len(sizes) == 11 and max(sizes) <= (50 + longalign.WINDOW_SLACK) * 50


def test_one_piece_gives_the_whole_alignment(shared_data, monkeypatch):
    """The piecewise path on a clip that is one piece gives exactly what the whole alignment gives."""
    pytest.importorskip("pocketsphinx")
    wav = shared_data / "audio" / "test_sentence.wav"          # 5.1 s: "long" for a bound of 3 s
    whole = phones_for_audio(wav, CLIPS["test_sentence.wav"])
    monkeypatch.setattr(stage, "ALIGN_WHOLE_MAX_S", 3.0)
    piecewise = phones_for_audio(wav, CLIPS["test_sentence.wav"])
    assert piecewise.source == whole.source == "aligned"
    assert piecewise.phones == whole.phones and piecewise.warnings == whole.warnings


def test_a_wrong_transcript_of_long_audio_warns_once_and_detects(shared_data, monkeypatch):
    pytest.importorskip("pocketsphinx")
    wav = shared_data / "audio" / "test_sentence.wav"
    monkeypatch.setattr(stage, "ALIGN_WHOLE_MAX_S", 3.0)
    track = phones_for_audio(wav, "the cat sat on the mat and the dog ate a bone")
    assert track.source == "detected" and len(track.warnings) == 1, track.warnings
    assert "does not match the audio" in track.warnings[0]
    assert track.phones == phones_for_audio(wav).phones
