"""The recogniser's dictionary cut to its language model's words (docs/phonemes.md, "Cost"): it holds
exactly the full dictionary's lines whose word the LM knows (alternates and order kept), is built once
into the cache folder, falls back to the full dictionary when the cache cannot be written, and gives the
very recognition the full dictionary gives. Real audio: test_sentence.wav."""
from __future__ import annotations

from pathlib import Path

import pytest

ps = pytest.importorskip("pocketsphinx", reason="pocketsphinx is not installed in this Python (requirements-dev.txt)")

from voca_addon.core.phonemes import lmdict, sphinx, stage   # noqa: E402

FULL = Path(ps.get_model_path(lmdict.DICTIONARY))


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VOCA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _entries(path) -> list:
    return [line.split(None, 1)[0] for line in Path(path).read_text("utf-8").splitlines() if line.strip()]


def test_cut_dictionary_keeps_the_lms_words_with_every_alternate_in_order(cache):
    path = lmdict.recogniser_dictionary(ps)
    assert path is not None and Path(path).parent == cache / "recogniser"
    full, cut = _entries(FULL), _entries(path)
    assert 0.4 * len(full) < len(cut) < 0.8 * len(full)
    position = {w: i for i, w in enumerate(full)}
    assert all(position[a] < position[b] for a, b in zip(cut, cut[1:]))     # a subsequence of the full one
    # The LM asked directly: a word of the full dictionary is kept iff the LM has it (every 97th checked).
    lm = ps.NGramModel(ps.Config(lm=None), ps.LogMath(), ps.get_model_path(lmdict.LANGUAGE_MODEL))
    zero = lm.prob(["zzqxwv"])
    kept = set(cut)
    for word in full[::97]:
        base = word.split("(")[0]
        assert (word in kept) == (lm.prob([base]) != zero), word
    assert {"to", "to(2)", "myopia", "severe"} <= kept


def test_cut_dictionary_is_built_once_and_read_again(cache):
    first = lmdict.recogniser_dictionary(ps)
    stamp = Path(first).stat().st_mtime_ns
    assert lmdict.recogniser_dictionary(ps) == first
    assert Path(first).stat().st_mtime_ns == stamp
    assert [p.name for p in (cache / "recogniser").iterdir()] == [Path(first).name]     # no temporary left


def test_recogniser_uses_the_cut_dictionary_and_the_full_one_when_the_cache_is_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("VOCA_CACHE_DIR", str(tmp_path / "cache"))
    assert sphinx._new_decoder("words").config["dict"] == lmdict.recogniser_dictionary(ps)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("VOCA_CACHE_DIR", str(blocker))
    assert lmdict.recogniser_dictionary(ps) is None
    assert Path(sphinx._new_decoder("words").config["dict"]) == FULL


def test_recognition_with_the_cut_dictionary_equals_the_full_dictionarys(cache, shared_data, monkeypatch):
    pcm, _ = stage._pcm(shared_data / "audio" / "test_sentence.wav")
    lexicon_cut: dict = {}
    cut = sphinx.recognise_words(pcm, lexicon=lexicon_cut)
    assert sphinx._new_decoder("words").config["dict"] != str(FULL)
    monkeypatch.setattr(lmdict, "recogniser_dictionary", lambda _ps: None)
    assert Path(sphinx._new_decoder("words").config["dict"]) == FULL
    lexicon_full: dict = {}
    assert cut and cut == sphinx.recognise_words(pcm, lexicon=lexicon_full)
    assert lexicon_cut == lexicon_full
