"""Phone tracks kept by the audio's content (core/phonemes/cache.py), on real speech."""
import shutil

import pytest

from voca_addon.core.phonemes import cache, phones_beside, phones_for_audio

SENTENCE = "Severe myopia contributed to Ron's inferiority complex"


@pytest.fixture()
def counted(monkeypatch, tmp_path):
    """A fresh cache folder and a pass that counts its runs (the real detector)."""
    monkeypatch.setenv("VOCA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VOCA_PHONE_CACHE", raising=False)
    runs = []

    def compute(audio, transcript=None):
        def run():
            runs.append((str(audio), transcript))
            return phones_for_audio(audio, transcript)
        return run
    return compute, runs


def test_a_track_found_once_is_read_back_equal(counted, shared_data, tmp_path):
    compute, runs = counted
    wav = shared_data / "audio" / "test_sentence.wav"
    first = cache.cached(wav, None, compute(wav))
    again = cache.cached(wav, None, compute(wav))
    assert again == first and len(runs) == 1 and first.source == "detected"
    assert [p.phone for p in again.phones if p.phone in ("P", "B", "M")] == ["M", "P", "B", "M", "P"]
    copy = tmp_path / "renamed copy.wav"                     # the content is the key, not the name
    shutil.copyfile(wav, copy)
    assert cache.cached(copy, None, compute(copy)) == first and len(runs) == 1
    aligned = cache.cached(wav, SENTENCE, compute(wav, SENTENCE))      # another transcript: another entry
    assert aligned.source == "aligned" and len(runs) == 2
    assert cache.cached(wav, SENTENCE, compute(wav, SENTENCE)) == aligned and len(runs) == 2
    assert len(list((tmp_path / "cache" / "phones").glob("*.json"))) == 2
    assert not [p for p in (tmp_path / "cache" / "phones").iterdir() if p.name.startswith(".")]   # no temporary


def test_other_audio_channel_or_detector_is_another_entry(counted, shared_data, tmp_path, monkeypatch):
    compute, runs = counted
    wav = shared_data / "audio" / "test_sentence.wav"
    changed = tmp_path / "changed.wav"
    data = bytearray(wav.read_bytes())
    data[-2:] = b"\x01\x00"                                 # one sample of the last frame differs
    changed.write_bytes(bytes(data))
    cache.cached(wav, None, compute(wav))
    cache.cached(changed, None, compute(changed))
    cache.cached(wav, None, compute(wav), channel="mix")
    assert len(runs) == 3
    monkeypatch.setattr(cache, "_FINGERPRINT", ["a detector changed since"])
    cache.cached(wav, None, compute(wav))
    assert len(runs) == 4


def test_a_damaged_entry_is_found_again_and_rewritten(counted, shared_data, tmp_path):
    compute, runs = counted
    wav = shared_data / "audio" / "test_sentence.wav"
    first = cache.cached(wav, None, compute(wav))
    (entry,) = (tmp_path / "cache" / "phones").glob("*.json")
    entry.write_text('{"phones": [["M", 1.0')              # cut short
    assert cache.cached(wav, None, compute(wav)) == first and len(runs) == 2
    assert cache.cached(wav, None, compute(wav)) == first and len(runs) == 2      # rewritten whole


def test_switched_off_errors_and_an_unwritable_folder_keep_nothing(counted, shared_data, tmp_path, monkeypatch):
    compute, runs = counted
    wav = shared_data / "audio" / "test_sentence.wav"
    monkeypatch.setenv("VOCA_PHONE_CACHE", "0")
    cache.cached(wav, None, compute(wav))
    cache.cached(wav, None, compute(wav))
    # no track kept (the recogniser's cut dictionary, core/phonemes/lmdict.py, is no track: kept regardless)
    assert len(runs) == 2 and not list((tmp_path / "cache").rglob("*.json"))
    monkeypatch.delenv("VOCA_PHONE_CACHE")

    def failing():
        raise RuntimeError("the recogniser failed")
    with pytest.raises(RuntimeError, match="recogniser failed"):
        cache.cached(wav, None, failing)
    assert not list((tmp_path / "cache").rglob("*.json"))
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    monkeypatch.setenv("VOCA_CACHE_DIR", str(blocker))     # the cache cannot be written: still a track
    assert cache.cached(wav, None, compute(wav)).phones


def test_phones_beside_keeps_a_file_s_track(monkeypatch, shared_data, tmp_path):
    """The pass beside the engine (CLI, batch) reads a file's track back: no second child is started."""
    import voca_addon.core.phonemes.child as child
    monkeypatch.setenv("VOCA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VOCA_PHONE_CACHE", raising=False)
    wav = str(shared_data / "audio" / "test_sentence.wav")
    first = phones_beside(wav)
    monkeypatch.setattr(child, "phones_in_process", None)     # a second child would fail here
    assert phones_beside(wav) == first == phones_for_audio(wav)
