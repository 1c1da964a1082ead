"""IPA labels in alignment files: Montreal Forced Aligner's IPA models in any language, read as ARPAbet.

TextGrids are written here in MFA's layout (short format, which Praat and MFA read alike) with phone
labels as MFA's english_mfa, french_mfa and german_mfa models write them; the expected phones are the
table in docs/phonemes.md, which a test below checks against the code.
"""
import re
from pathlib import Path

import pytest

from voca_addon.core.errors import InputError
from voca_addon.core.phonemes import Phone, read_alignment
from voca_addon.core.phonemes.track import (IPA_AFFRICATES, IPA_CONSONANTS, IPA_VOWELS, alphabet_of, arpabet,
                                            ipa_phone)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "phonemes.md"


def textgrid(tiers, xmax):
    """A short-format TextGrid; ``tiers`` = [(name, [(xmin, xmax, text), …])], gaps filled with ""."""
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", str(xmax), "<exists>", str(len(tiers))]
    for name, spans in tiers:
        filled, t = [], 0.0
        for a, b, text in spans:
            if a > t:
                filled.append((t, a, ""))
            filled.append((a, b, text))
            t = b
        if xmax > t:
            filled.append((t, xmax, ""))
        out += ['"IntervalTier"', f'"{name}"', "0", str(xmax), str(len(filled))]
        out += [f'{a!r}\n{b!r}\n"{text}"' for a, b, text in filled]
    return "\n".join(out) + "\n"


def aligned(words, start=0.1, step=0.08, gap=0.1):
    """Word and phone spans for [(word, [phone labels])], phones ``step`` s long, words ``gap`` s apart."""
    word_spans, phone_spans, t = [], [], start
    for word, labels in words:
        w0 = t
        for label in labels:
            phone_spans.append((round(t, 6), round(t + step, 6), label))
            t += step
        word_spans.append((round(w0, 6), round(t, 6), word))
        t += gap
    return word_spans, phone_spans, round(t, 6)


def read(tmp_path, words, name="a.TextGrid", duration=None):
    word_spans, phone_spans, end = aligned(words)
    path = tmp_path / name
    path.write_text(textgrid([("words", word_spans), ("phones", phone_spans)], end), encoding="utf-8")
    return read_alignment(path, duration=duration)


def phones_by_word(track):
    out = {}
    for p in track.phones:
        out.setdefault(p.word, []).append(p.phone)
    return out


# english_mfa (MFA 2.x/3.x IPA English): palatalised and labialised stops, ɱ before f, əw, long vowels
ENGLISH_MFA = [("been", ["bʲ", "ɪ", "n"]), ("then", ["ð", "ɛ", "n"]), ("info", ["ɪ", "ɱ", "f", "əw"]),
               ("omega", ["ow", "mʲ", "ej", "ɡ", "ə"]), ("myopia", ["m", "aj", "ow", "pʷ", "iː", "ə"]),
               ("button", ["b", "ɐ", "ʔ", "n̩"]), ("cute", ["cʰ", "j", "ʉː", "t̪"]),
               ("human", ["ç", "ʉː", "m", "ə", "n"])]


def test_english_mfa_ipa_textgrid_reads_with_bilabials_and_labiodentals_in_their_classes(tmp_path):
    """Found by a new-user trial: MFA's english_mfa output (bʲ, ɱ, əw, iː, n̩, ç …) was refused by name."""
    track = read(tmp_path, ENGLISH_MFA, duration=5.0)
    assert phones_by_word(track) == {
        "been": ["B", "IH", "N"], "then": ["DH", "EH", "N"], "info": ["IH", "F", "F", "OW"],
        "omega": ["OW", "M", "EY", "G", "AH"], "myopia": ["M", "AY", "OW", "P", "IY", "AH"],
        "button": ["B", "AH", "T", "N"], "cute": ["K", "Y", "UW", "T"], "human": ["HH", "UW", "M", "AH", "N"]}
    assert [(p.phone, p.word) for p in track.of("P", "B", "M")] == [
        ("B", "been"), ("M", "omega"), ("M", "myopia"), ("P", "myopia"), ("B", "button"), ("M", "human")]
    assert [(p.phone, p.word) for p in track.of("F", "V")] == [("F", "info"), ("F", "info")]
    assert track.warnings == ()


def test_french_mfa_textgrid_merci_beaucoup(tmp_path):
    track = read(tmp_path, [("merci", ["m", "ɛ", "ʁ", "s", "i"]), ("beaucoup", ["b", "o", "k", "u"]),
                            ("bonjour", ["b", "ɔ̃", "ʒ", "u", "ʁ"]), ("vu", ["v", "y"]), ("peur", ["p", "œ", "ʁ"])])
    assert phones_by_word(track) == {"merci": ["M", "EH", "R", "S", "IY"], "beaucoup": ["B", "OW", "K", "UW"],
                                     "bonjour": ["B", "AO", "ZH", "UW", "R"], "vu": ["V", "UW"],
                                     "peur": ["P", "AO", "R"]}
    assert track.phones[0] == Phone("M", 0.1, 0.18, "merci")


def test_german_mfa_textgrid_with_x_y_and_c_cedilla(tmp_path):
    """x (Buch) is a velar fricative, not Rhubarb's rest X; y (über) a rounded vowel, not ARPAbet Y."""
    track = read(tmp_path, [("ich", ["ɪ", "ç"]), ("Buch", ["b", "uː", "x"]), ("über", ["y", "b", "ɐ"]),
                            ("fünf", ["f", "ʏ", "ɱ", "f"]), ("Pfeffer", ["pf", "ɛ", "f", "ɐ"]),
                            ("zwei", ["ts", "v", "aj"]), ("Leute", ["l", "ɔʏ", "t", "ə"])])
    assert phones_by_word(track) == {"ich": ["IH", "HH"], "Buch": ["B", "UW", "HH"], "über": ["UW", "B", "AH"],
                                     "fünf": ["F", "UH", "F", "F"], "Pfeffer": ["P", "EH", "F", "AH"],
                                     "zwei": ["S", "V", "AY"], "Leute": ["L", "OY", "T", "AH"]}


@pytest.mark.parametrize("label,phone", [
    # secondary articulations and diacritics do not change the class
    ("bʲ", "B"), ("pʲ", "P"), ("pʷ", "P"), ("mʲ", "M"), ("m̩", "M"), ("fʷ", "F"), ("vʷ", "V"), ("d̪", "D"),
    ("t̪", "T"), ("kʷ", "K"), ("tʷ", "T"), ("ɡʷ", "G"), ("cʷ", "K"), ("ʈ", "T"), ("ɾʲ", "T"), ("n̩", "N"),
    ("l̩", "L"), ("ɫ̩", "L"), ("iː", "IY"), ("ɑː", "AA"), ("ɛ̃", "EH"), ("ã", "AA"), ("pʰ", "P"), ("tˠ", "T"),
    ("tˤ", "T"), ("ˈa", "AA"), ("t͡ʃ", "CH"), ("d‿ʒ", "JH"), ("p̚", "P"), ("n̥", "N"), ("aɪ̯", "AY"), ("kʼ", "K"),
    # other languages: Mandarin (tone letters), Japanese, Spanish, Hindi
    ("tɕʰ", "CH"), ("ʈʂ", "CH"), ("ʂ", "SH"), ("ɕ", "SH"), ("a˥˩", "AA"), ("ɤ˧˥", "AH"), ("ɯ", "IH"),
    ("ɸ", "P"), ("β", "B"), ("ɣ", "G"), ("ʝ", "Y"), ("r", "R"), ("ɖ", "D"), ("ɳ", "N"), ("ʋ", "V"),
    # bilabial and labiodental: the closures' two classes
    ("ɓ", "B"), ("ʙ", "B"), ("ɱ", "F"), ("ⱱ", "V"), ("kp", "P"), ("ɡb", "B"), ("ŋm", "M"), ("pf", "P"),
    # vowels by height, backness, rounding; diphthongs written as two symbols; rhotic hook
    ("y", "UW"), ("ø", "OW"), ("œ", "AO"), ("ʏ", "UH"), ("ɨ", "IH"), ("ʉ", "UW"), ("ɵ", "OW"), ("ɐ", "AH"),
    ("ɞ", "AO"), ("ai", "AY"), ("au", "AW"), ("ao", "AW"), ("ei", "EY"), ("ou", "OW"), ("əʊ", "OW"), ("ɔj", "OY"),
    ("ɪə", "IH"), ("ə˞", "ER"), ("ɚ", "ER"),
])
def test_ipa_symbol_maps_to_the_nearest_arpabet_phone(label, phone):
    assert ipa_phone(label) == phone


@pytest.mark.parametrize("label", ["hello", "1", "a1", "ʘ", "ǃ", "ː", "str", "A"])
def test_labels_that_are_not_ipa_phones_are_refused(label):
    assert ipa_phone(label) is None
    with pytest.raises(InputError, match="not an ARPAbet phone .* nor an IPA phone symbol"):
        arpabet(label, "x.TextGrid", alphabet_of([label, "ə"]))


def test_english_spelling_is_not_ipa():
    """"sh", "th", "dh" are ARPAbet (lower case), not IPA clusters: IPA writes aspiration ʰ, not h."""
    assert [ipa_phone(label) for label in ("sh", "th", "dh", "ch", "hh", "jh")] == [None] * 6


def test_the_refusal_says_arpabet_or_ipa_not_english_only(tmp_path):
    """The message told a French user to 'use an English ARPAbet alignment'; it says what is accepted."""
    with pytest.raises(InputError) as caught:
        read(tmp_path, [("merci", ["m", "ɛ", "hello", "s", "i"])])
    message = str(caught.value)
    assert "tier 'phones', interval 4" in message and "'hello'" in message
    assert "ARPAbet" in message and "IPA in any language" in message and "English ARPAbet" not in message


@pytest.mark.parametrize("labels,alphabet", [
    (["M", "AA1", "P", "sil", ""], "arpabet"),     # MFA english_us_arpa
    (["M", "X", "Y"], "arpabet"),                  # upper case: X is a silence, Y the glide
    (["dh", "ah0", "y"], "arpabet"),               # lower-case ARPAbet: dh, ah0 cannot be IPA
    (["t", "y", "b", "y", "s"], "ipa"),            # French "tu", "bus": every label also a letter of ARPAbet
    (["o", "x", "o"], "ipa"),                      # Spanish "ojo"
    (["m", "ɑ", "p"], "ipa"),
    ([], "arpabet"),
])
def test_a_tier_is_read_in_one_alphabet_decided_by_all_its_labels(labels, alphabet):
    assert alphabet_of(labels).name == alphabet


def test_lower_case_x_and_y_in_an_ipa_tier_are_phones_not_silence_or_the_glide(tmp_path):
    """Found by a new-user trial: x (velar fricative) was read as Rhubarb's rest X (silence), y as ARPAbet Y."""
    track = read(tmp_path, [("ojo", ["o", "x", "o"]), ("tu", ["t", "y"])])
    assert [p.phone for p in track.phones] == ["OW", "HH", "OW", "T", "UW"]
    upper = read(tmp_path, [("yes", ["Y", "EH1", "S"]), ("", ["X"])], name="b.TextGrid")
    assert [p.phone for p in upper.phones] == ["Y", "EH", "S"]


def test_a_tier_mixing_arpabet_and_ipa_is_refused_naming_both_labels(tmp_path):
    with pytest.raises(InputError, match=r"'M' is ARPAbet, but this tier also holds 'ɑ'.*one alphabet per tier"):
        read(tmp_path, [("mop", ["M", "ɑ", "P"])])


def _doc_table():
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("### IPA labels"):]
    section = section[:section.index("\n\n", section.index("| ARPAbet"))]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`([A-Z]+)`", cells[0])
        if m:
            rows[m.group(1)] = set(cells[1].replace("`", "").split())
    return rows


def test_docs_ipa_table_is_the_code_table():
    """docs/phonemes.md lists every IPA symbol the reader maps, under the ARPAbet phone it maps to."""
    table = {}
    for mapping in (IPA_CONSONANTS, IPA_VOWELS, IPA_AFFRICATES):
        for symbol, phone in mapping.items():
            table.setdefault(phone, set()).add(symbol)
    assert _doc_table() == table
