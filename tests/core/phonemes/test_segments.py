"""Long audio decoded in pieces (core/phonemes/segments.py) and the pass run in a child Python.

The long clip is real speech: the 16 VOCASET sentences of ../shared/data/audio concatenated (about 60 s).
Where the words are is known independently of the cutter: each sentence's transcript is force-aligned on
its own clip and shifted by the clip's offset.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from voca_addon.core.phonemes import Phone, child_python, phones_beside, phones_for_audio, phones_in_process
from voca_addon.core.phonemes import segments
from voca_addon.core.phonemes.scoring import BILABIALS, score
from voca_addon.core.speech.audio import Audio, load_audio, select_channel
from voca_addon.core.speech.resample import resample

CLIPS = json.loads((Path(__file__).with_name("transcripts.json")).read_text())["clips"]
VOCASET = sorted(rel for rel in CLIPS if rel.startswith("vocaset/"))


@pytest.fixture(scope="module")
def long_clip(shared_data):
    """(Audio of the 16 sentences one after the other, [(rel, offset s)])."""
    parts, offsets, t, rate = [], [], 0.0, None
    for rel in VOCASET:
        audio = load_audio(shared_data / "audio" / rel)
        rate = rate or audio.rate
        assert audio.rate == rate
        mono = select_channel(audio, 0).samples
        parts.append(mono)
        offsets.append((rel, t))
        t += len(mono) / rate
    return Audio(np.concatenate(parts), rate), offsets


def test_cuts_fall_between_words_and_pieces_are_bounded(long_clip, shared_data):
    pytest.importorskip("pocketsphinx")
    audio, offsets = long_clip
    samples = resample(audio.samples, audio.rate, segments.RATE)
    pieces = segments.split_points(samples)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(samples)
    assert all(b0 == a1 for (_, b0), (a1, _) in zip(pieces, pieces[1:]))
    assert len(pieces) >= 3
    assert all(0 < b - a <= segments.SEGMENT_MAX_S * segments.RATE for a, b in pieces)
    words = []                  # (start, end) s of every word, from each sentence aligned alone
    for rel, t0 in offsets:
        track = phones_for_audio(shared_data / "audio" / rel, CLIPS[rel])
        assert track.source == "aligned"
        words += [(t0 + p.start, t0 + p.end) for p in track.phones]
    for a, _ in pieces[1:]:
        cut = a / segments.RATE
        assert not any(s + 0.005 < cut < e - 0.005 for s, e in words), cut


def test_without_a_pause_the_cut_is_the_quietest_frame():
    rng = np.random.default_rng(0)
    n = 50 * segments.RATE                      # 50 s of noise, never quiet
    envelope = np.full(n, 3000.0)
    dip = int(13.37 * segments.RATE)            # one softer (not silent) 30 ms stretch at 13.37 s
    envelope[dip:dip + 480] = 600.0
    samples = rng.standard_normal(n) * envelope
    pieces = segments.split_points(samples)
    assert abs(pieces[1][0] / segments.RATE - 13.38) <= 0.02
    assert all(b - a <= segments.SEGMENT_MAX_S * segments.RATE for a, b in pieces)


def test_short_audio_is_one_piece():
    assert segments.split_points(np.zeros(20 * segments.RATE)) == [(0, 20 * segments.RATE)]


def test_long_detection_finds_the_sentences_bilabials(long_clip, shared_data):
    pytest.importorskip("pocketsphinx")
    audio, offsets = long_clip
    detected = phones_for_audio(audio)
    assert detected.source == "detected" and detected.phones[-1].end <= audio.duration_s + 1e-6
    reference = []
    for rel, t0 in offsets:
        reference += [Phone(p.phone, t0 + p.start, t0 + p.end, p.word)
                      for p in phones_for_audio(shared_data / "audio" / rel, CLIPS[rel]).phones]
    s = score(detected, reference, BILABIALS)
    # measured: the same figures as the clips decoded one by one (docs/phonemes.md), margin ~2 bilabials
    assert s.found_rate >= 0.75 and s.false_rate <= 0.30, (s.found, s.reference, s.false, s.detected)


def test_the_child_reports_progress_lends_a_core_and_a_cancel_kills_it(shared_data):
    pytest.importorskip("pocketsphinx")
    assert child_python()                       # the venv's python runs the child
    from voca_addon.core.speech.blas import cores_lent
    wav = shared_data / "audio" / "test_sentence.wav"
    seen, lent = [], set()

    def progress(fraction, stage):
        seen.append((fraction, stage))
        lent.add(cores_lent())
    assert phones_in_process(wav, progress=progress) == phones_for_audio(wav)
    assert seen and all(stage == "phonemes" for _, stage in seen) and seen[-1][0] == 1.0
    assert lent == {1} and cores_lent() == 0        # the engine's recurrence left the child a core meanwhile

    class Stop(Exception):
        pass

    def cancel(fraction, stage):
        raise Stop()
    with pytest.raises(Stop):
        phones_in_process(wav, progress=cancel)
    assert cores_lent() == 0                        # given back by a cancel too


def test_phones_beside_takes_the_thread_for_decoded_audio(shared_data):
    pytest.importorskip("pocketsphinx")
    wav = shared_data / "audio" / "test_sentence.wav"
    audio = load_audio(wav)
    assert phones_beside(audio) == phones_for_audio(audio) == phones_beside(str(wav))


def test_phones_beside_says_pocketsphinx_is_missing_before_any_child(monkeypatch, shared_data):
    import sys
    import voca_addon.core.phonemes.child as child
    from voca_addon.core.phonemes import PhonemesUnavailable
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)          # import pocketsphinx → ImportError
    monkeypatch.setattr(child.subprocess, "Popen", None)             # a child started would fail differently
    with pytest.raises(PhonemesUnavailable, match="PocketSphinx is not available"):
        phones_beside(str(shared_data / "audio" / "test_sentence.wav"))


def test_long_audio_is_resampled_in_blocks_like_one_call(long_clip):
    from voca_addon.core.phonemes import sphinx, stage
    audio, _ = long_clip                        # 61 s at 22 kHz
    whole = sphinx.pcm16(resample(audio.samples, audio.rate, sphinx.RATE))
    blocks = stage._resample_blocks(audio.samples, audio.rate)
    a, b = np.frombuffer(whole, "<i2").astype(int), np.frombuffer(blocks, "<i2").astype(int)
    assert len(a) == len(b)
    assert np.abs(a - b).max() <= 1             # float round-off may move a rounding by one unit (measured: 0)


def test_the_child_decodes_long_audio_in_pieces_like_this_process(long_clip, tmp_path):
    pytest.importorskip("pocketsphinx")
    import wave
    audio, _ = long_clip
    wav = tmp_path / "long.wav"
    with wave.open(str(wav), "wb") as f:        # the sentences' own int16 samples, unchanged
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(audio.rate)
        f.writeframes(np.round(audio.samples).astype("<i2").tobytes())
    assert phones_in_process(wav) == phones_for_audio(audio)


def test_the_child_imports_no_numpy(shared_data):
    """The child's own script (child._CHILD) on the PCM this process makes: the same track, and neither
    numpy nor scipy in the child's modules (its memory: docs/phonemes.md, "Cost")."""
    pytest.importorskip("pocketsphinx")
    import os
    import subprocess
    import sys
    from voca_addon.core.phonemes import child, stage
    wav = shared_data / "audio" / "test_sentence.wav"
    pcm, duration, pieces = stage.pcm_pieces(wav)
    request = {"package": child.PACKAGE_DIR.name, "duration": duration, "pieces": pieces, "transcript": None,
               "method": "words", "tag": "t"}
    script = child._CHILD + "\nsys.stderr.write('imported: %s\\n' % [m for m in ('numpy', 'scipy') if m in sys.modules])"
    env = dict(os.environ, PYTHONPATH=str(child.PACKAGE_DIR.parent))
    run = subprocess.run([sys.executable, "-c", script], input=json.dumps(request).encode() + b"\n" + pcm,
                         capture_output=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert "imported: []" in run.stderr.decode()
    reply = json.loads(run.stdout)
    assert [tuple(p) for p in reply["phones"]] == [tuple(p) for p in phones_for_audio(wav).phones]
