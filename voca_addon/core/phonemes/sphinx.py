"""PocketSphinx, imported lazily: phone detection from the audio and forced alignment of words.

PocketSphinx (CMU, BSD licence; the wheel carries the US-English acoustic model, a phone bigram and
the CMU pronouncing dictionary) is optional: :func:`module` raises :class:`PhonemesUnavailable` with
one line when this Python cannot import it, and nothing else in the package imports it.

Three searches, all on 16 kHz int16 mono audio, 10 ms frames:

- :func:`recognise_words` — the full-vocabulary recogniser (en-us trigram LM; the CMU dictionary cut to
  the LM's 72.5k words by :mod:`.lmdict`, the others being words its search ignores), with
  :data:`RECOGNISER_CONFIG`: at most 2000 active HMMs per frame (PocketSphinx's default 30000) — the same
  bilabials found on the 18 test clips for ~60 % of the CPU (docs/phonemes.md, "Cost");
- :func:`align_words` — forced alignment of a word sequence, two passes (words, then phones and states),
  by a decoder that holds only those words' pronunciations (:func:`lexicon_of`, or the recogniser's
  lexicon) and no language model: ~0.02 s and a few MB to create instead of ~0.4 s and ~90 MB;
- :func:`phone_loop` — the phone recogniser (``allphone`` search with the en-us phone bigram).

Threads and state: PocketSphinx's results depend on what a decoder decoded before (the live
cepstral mean and search state carry over, even when the mean is set; seen for the recognisers and,
after a long history, for alignment), so every call gets a fresh decoder (0.3-0.4 s of CPU for the
recogniser: acoustic model, dictionary and language model are loaded; ~0.05 s for the aligner) and one
decoder is never shared. The recognisers compute the utterance's
cepstral mean first (a features-only pass) and fix it, so block decoding gives the same result as one
call. One utterance decodes at a time per process (a lock). PocketSphinx's binding holds the GIL
while it decodes, so the recognisers are fed blocks of :data:`BLOCK_S`: between blocks other Python
threads (the engine's) run; for real parallelism use :mod:`.child`.

Contract: stdlib (+ pocketsphinx when present; numpy inside :func:`pcm16` only); thread-safe.
"""
from __future__ import annotations

import math
import os
import threading
from typing import List, Optional, Sequence, Tuple

from ..errors import VocaError
from . import lmdict

FRAME_S = 0.01          # s, PocketSphinx's frame shift (100 frames per second)
BLOCK_S = 0.01          # s of audio per process_raw call (the GIL is released between calls)
RATE = 16000            # Hz, the en-us model's sampling rate
# The phone recogniser's search: wide beams and a language weight of 2 for the phone bigram (the
# defaults, tuned for word search, prune most consonants away).
PHONE_LOOP_CONFIG = dict(beam=1e-20, pbeam=1e-20, lw=2.0)
# The full-vocabulary recogniser's search settings (PocketSphinx options). maxhmmpf 2000 (default 30000):
# on the 18 test clips P/B/M 28/32 found, 5/33 false — as with the defaults — for 31 s of CPU per minute of
# audio against 52 s (measured side by side, docs/phonemes.md "Cost"); 1500 lost one and added two false.
RECOGNISER_CONFIG: dict = dict(maxhmmpf=2000)
UNKNOWN_WORD = "voca_unknown_word"     # in every alignment decoder's dictionary: stands for words it lacks
UNKNOWN_PRONUNCIATION = "SIL"           # a silence model absorbs any length (3 states with self-loops)
_SMALLEST = 1e-300                      # an acoustic probability that underflowed to 0 (its log: -690)


class PhonemesUnavailable(VocaError):
    """PocketSphinx cannot be imported in this Python (detection and transcript alignment need it)."""


_lock = threading.Lock()
_pool: dict = {}                # kind → list of idle decoders
# One utterance at a time in this process: PocketSphinx makes no thread-safety promise, so two threads
# never interleave their decoders' blocks (with this lock concurrent calls give exactly the serial
# results: tests/core/phonemes); other Python threads still run between blocks.
_utterance_lock = threading.RLock()


def module():
    """The ``pocketsphinx`` module, or PhonemesUnavailable with one line."""
    try:
        import pocketsphinx
    except ImportError as exc:
        import sys
        raise PhonemesUnavailable(
            f"PocketSphinx is not available in this Python {sys.version_info.major}.{sys.version_info.minor} "
            f"({exc}): phoneme detection and transcript alignment need it; an alignment file (TextGrid, Rhubarb, "
            "JSON) still works.") from None
    return pocketsphinx


def detector_available() -> Tuple[bool, str]:
    """(True, '') when PocketSphinx can be imported, else (False, the one-line reason)."""
    try:
        module()
    except PhonemesUnavailable as exc:
        return False, str(exc)
    return True, ""


def _lexicon_file(lexicon) -> str:
    """A temporary dictionary file holding ``lexicon`` ({word: [pronunciation, …]}, alternates as word(2)…)
    and :data:`UNKNOWN_WORD`; the caller removes it."""
    import tempfile
    lines = [f"{UNKNOWN_WORD} {UNKNOWN_PRONUNCIATION}"]
    for word, prons in lexicon.items():
        lines += [f"{word if k == 0 else f'{word}({k + 1})'} {pron}" for k, pron in enumerate(prons)]
    fd, path = tempfile.mkstemp(prefix="voca-lexicon-", suffix=".dict")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _new_decoder(kind: str, lexicon=None):
    ps = module()
    if kind == "phones":
        return ps.Decoder(loglevel="FATAL", lm=None, allphone=ps.get_model_path("en-us/en-us-phone.lm.bin"),
                          **PHONE_LOOP_CONFIG)
    if kind == "dict":      # the pronouncing dictionary alone (no language model: 60 MB and 0.3 s less)
        return ps.Decoder(loglevel="FATAL", lm=None)
    if kind == "align":     # bestpath off: its lattice rescoring can give a phone 1 frame, which fails pass 2
        # Only the words to align in its dictionary, no language model: ~0.02 s and ~6 MB instead of the
        # 134k-word dictionary + trigram model (0.37 s, ~90 MB) the alignment never uses.
        path = _lexicon_file(lexicon or {})
        try:
            return ps.Decoder(loglevel="FATAL", lm=None, dict=path, bestpath=False)
        finally:
            os.unlink(path)
    # The dictionary cut to the LM's words (the search ignores the others): the same results, 13 MB less.
    cut = lmdict.recogniser_dictionary(ps)
    return ps.Decoder(loglevel="FATAL", **{**({"dict": cut} if cut else {}), **RECOGNISER_CONFIG})


POOLED = ()             # decoder kinds whose results do not depend on earlier utterances: none found


class _Borrowed:
    """Context manager: a decoder of ``kind``: for a pooled kind an idle one from the pool (or a new one),
    returned afterwards; otherwise a new one, dropped afterwards."""

    def __init__(self, kind: str, lexicon=None):
        self.kind, self.lexicon, self.decoder, self.broken = kind, lexicon, None, False

    def __enter__(self):
        with _lock:
            idle = _pool.setdefault(self.kind, [])
            self.decoder = idle.pop() if idle and self.kind in POOLED else None
        if self.decoder is None:
            self.decoder = _new_decoder(self.kind, self.lexicon)
        return self.decoder

    def __exit__(self, exc_type, *rest):
        if exc_type is None and not self.broken and self.kind in POOLED:
            with _lock:
                _pool[self.kind].append(self.decoder)


def pcm16(samples) -> bytes:
    """float int16-scale samples [n] (ndarray) → little-endian int16 bytes (rounded, clipped)."""
    import numpy as np      # here: the phoneme child decodes PCM it is given, without numpy (.child)
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def _decode(decoder, pcm: bytes, progress=None, span=(0.0, 1.0)) -> None:
    with _utterance_lock:
        _decode_blocks(decoder, pcm, progress, span)


def _decode_blocks(decoder, pcm: bytes, progress, span) -> None:
    step = int(BLOCK_S * RATE) * 2
    decoder.start_utt()                 # features only: the utterance's cepstral mean (batch CMN) ...
    decoder.process_raw(pcm, no_search=True, full_utt=True)
    decoder.end_utt()
    decoder.set_cmn(decoder.get_cmn())  # ... fixed before the search, so blocks decode like one call
    decoder.start_utt()
    for i in range(0, len(pcm), step):
        decoder.process_raw(pcm[i:i + step], full_utt=False)
        if progress is not None:
            progress(span[0] + (span[1] - span[0]) * min(1.0, (i + step) / max(1, len(pcm))), "phonemes")
    decoder.end_utt()


def _decode_whole(decoder, pcm: bytes) -> None:
    """One call, batch CMN (alignment is fast: ~0.03 s per second of audio, the GIL held that long)."""
    with _utterance_lock:
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()


def _lm_search(decoder) -> None:
    """Back to the language-model search after an alignment."""
    for name in ("_lm", "_default"):
        try:
            decoder.activate_search(name)
            return
        except (RuntimeError, KeyError):
            continue


def _pronunciations(decoder, word: str) -> List[str]:
    """Every pronunciation of ``word`` in ``decoder``'s dictionary (``word``, ``word(2)``, …)."""
    out, k = [], 1
    while True:
        pron = decoder.lookup_word(word if k == 1 else f"{word}({k})")
        if pron is None:
            return out
        out.append(pron)
        k += 1


def recognise_words(pcm: bytes, progress=None, span=(0.0, 1.0), lexicon: Optional[dict] = None
                    ) -> List[Tuple[str, float, float]]:
    """Full-vocabulary recognition: [(word, start s, end s)], fillers and silences left out.

    ``lexicon``, when given, receives {word: [every dictionary pronunciation]} of the recognised words
    (what :func:`align_words` needs to align them without the whole dictionary).
    """
    with _Borrowed("words") as decoder:
        _decode(decoder, pcm, progress, span)
        hyp = decoder.hyp()
        segs = list(decoder.seg()) if hyp is not None else []
        out = []
        for s in segs:
            word = s.word.split("(")[0]
            if word.startswith(("<", "[", "+")) or not word:
                continue
            out.append((word, s.start_frame * FRAME_S, (s.end_frame + 1) * FRAME_S))
            if lexicon is not None and word not in lexicon:
                lexicon[word] = _pronunciations(decoder, word)
    return out


def dictionary_words(words: Sequence[str]) -> List[Optional[str]]:
    """Each word's dictionary pronunciation (space-separated ARPAbet) or None when not in the dictionary."""
    with _Borrowed("dict") as decoder:
        return [decoder.lookup_word(w) for w in words]


def lexicon_of(words: Sequence[str]) -> dict:
    """{word: [every dictionary pronunciation]} of the words the dictionary holds (the others left out)."""
    with _Borrowed("dict") as decoder:
        found = {w: _pronunciations(decoder, w) for w in dict.fromkeys(words)}
    return {w: p for w, p in found.items() if p}


def acoustic_fit(decoder, fit: Optional[dict]) -> None:
    """Add the decoded utterance's acoustic log-likelihood and frame count to ``fit`` ({"log", "frames"}).

    The log is the sum over the hypothesis' segments of the natural log of PocketSphinx's acoustic
    probability (``Segment.ascore``: its score, normalised per frame by the best active senone, as a
    probability), so only differences between two searches of the same audio mean anything: what the
    phone recogniser's free search reaches against what a forced alignment reaches (:func:`..stage.fits`).
    """
    if fit is None:
        return
    fit["log"] = fit.get("log", 0.0) + sum(math.log(max(s.ascore, _SMALLEST)) for s in decoder.seg())
    fit["frames"] = fit.get("frames", 0) + decoder.n_frames()


def align_words(pcm: bytes, words: Sequence[str], lexicon: Optional[dict] = None, fit: Optional[dict] = None
                ) -> Optional[List[Tuple[str, float, float, List[Tuple[str, float, float]]]]]:
    """Forced alignment of ``words`` (all in the dictionary, or :data:`UNKNOWN_WORD`).

    ``lexicon`` ({word: [pronunciations]}, from :func:`recognise_words` or :func:`lexicon_of`) gives the
    words' pronunciations; without it they are looked up in the dictionary first. ``fit``, when given,
    receives the word pass's acoustic log-likelihood and frames (:func:`acoustic_fit`).

    Returns
    -------
    list of (word, start s, end s, [(phone, start s, end s)]) or None
        None when the words cannot be aligned to the audio (the search found no path: wrong text).
    """
    if lexicon is None:
        lexicon = lexicon_of([w for w in words if w != UNKNOWN_WORD])
    borrowed = _Borrowed("align", {w: lexicon[w] for w in dict.fromkeys(words) if w in lexicon})
    with borrowed as decoder:
        try:
            decoder.set_align_text(" ".join(words))
            _decode_whole(decoder, pcm)
            if decoder.hyp() is None:
                return None
            acoustic_fit(decoder, fit)
            decoder.set_alignment()
            _decode_whole(decoder, pcm)
            alignment = decoder.get_alignment()
            if alignment is None:
                return None
            out = []
            for w in alignment:
                phones = [(p.name, p.start * FRAME_S, (p.start + p.duration) * FRAME_S) for p in w]
                out.append((w.name.split("(")[0], w.start * FRAME_S, (w.start + w.duration) * FRAME_S, phones))
            return out
        except RuntimeError:                # "Alignment failed in frame N": no path through these words
            borrowed.broken = True          # its state is unknown: not put back in the pool
            return None
        finally:
            _lm_search(decoder)


def phone_loop(pcm: bytes, progress=None, span=(0.0, 1.0), fit: Optional[dict] = None
               ) -> List[Tuple[str, float, float]]:
    """Phone recognition (allphone search): [(phone, start s, end s)], silences and noise included.
    ``fit``, when given, receives its acoustic log-likelihood and frames (:func:`acoustic_fit`)."""
    with _Borrowed("phones") as decoder:
        _decode(decoder, pcm, progress, span)
        segs = list(decoder.seg()) if decoder.hyp() is not None else []
        if segs:
            acoustic_fit(decoder, fit)
    return [(s.word, s.start_frame * FRAME_S, (s.end_frame + 1) * FRAME_S) for s in segs]
