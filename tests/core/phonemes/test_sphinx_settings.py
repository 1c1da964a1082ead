"""The detector's cost settings (docs/phonemes.md, "Cost"): the recogniser gets its configured search
options, and the aligner works from a lexicon of the words it aligns (not the 134k-word dictionary and
the trigram model) with the very result the whole dictionary gives. Real audio: test_sentence.wav."""
from __future__ import annotations

import pytest

pytest.importorskip("pocketsphinx", reason="pocketsphinx is not installed in this Python (requirements-dev.txt)")

from voca_addon.core.phonemes import sphinx, stage   # noqa: E402


@pytest.fixture(scope="module")
def pcm(shared_data):
    data, _ = stage._pcm(shared_data / "audio" / "test_sentence.wav")
    return data


def test_recogniser_gets_the_configured_search_settings(monkeypatch):
    assert sphinx.RECOGNISER_CONFIG, "the default recogniser settings are not PocketSphinx's defaults"
    decoder = sphinx._new_decoder("words")
    for key, value in sphinx.RECOGNISER_CONFIG.items():
        assert decoder.config[key] == value, key
    monkeypatch.setitem(sphinx.RECOGNISER_CONFIG, "maxhmmpf", 1234)
    assert sphinx._new_decoder("words").config["maxhmmpf"] == 1234


def test_lexicon_of_lists_every_pronunciation_and_leaves_out_unknown_words():
    lexicon = sphinx.lexicon_of(["to", "the", "to", "zzqxwv"])
    assert set(lexicon) == {"to", "the"}
    assert len(lexicon["to"]) >= 2 and len(set(lexicon["to"])) == len(lexicon["to"])
    first = sphinx.dictionary_words(["to", "the", "zzqxwv"])
    assert [lexicon["to"][0], lexicon["the"][0], None] == first


def test_aligner_holds_only_the_words_it_aligns():
    decoder = sphinx._new_decoder("align", {"severe": ["S AH V IH R"]})
    assert decoder.lookup_word("severe") == "S AH V IH R"
    assert decoder.lookup_word("myopia") is None                     # in the full dictionary, not here
    assert decoder.lookup_word(sphinx.UNKNOWN_WORD) == sphinx.UNKNOWN_PRONUNCIATION


def test_alignment_from_the_recognisers_lexicon_equals_the_dictionarys(pcm):
    lexicon: dict = {}
    words = [w for w, _, _ in sphinx.recognise_words(pcm, lexicon=lexicon)]
    assert words and set(words) == set(lexicon)
    assert any(len(prons) > 1 for prons in lexicon.values())          # alternates are carried
    from_recogniser = sphinx.align_words(pcm, words, lexicon)
    assert from_recogniser is not None
    assert from_recogniser == sphinx.align_words(pcm, words)        # lexicon looked up in the dictionary
    assert from_recogniser == sphinx.align_words(pcm, words, sphinx.lexicon_of(words))
