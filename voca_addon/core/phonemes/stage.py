"""The phoneme stage: audio (and optionally its transcript) → PhoneTrack.

- **Detection** (no transcript): PocketSphinx's full-vocabulary recogniser gives a word hypothesis,
  which is then force-aligned to the audio for its phones (method "words", the default: it finds more
  bilabials than the phone recogniser, see docs/phonemes.md); method "phones" uses the phone
  recogniser alone. Source "detected"; words come from the hypothesis (they may be wrong, the phones
  of a misrecognised word are often still right).
- **Transcript** (forced alignment): the text is normalised (lower case, punctuation removed,
  apostrophes kept) and aligned word by word; source "aligned". Words not in the CMU dictionary are
  named in ``warnings``; the aligner gives each one a span (a silence model that absorbs it) and the
  phone recogniser's phones inside that span stand in for it. A transcript the audio does not match
  (no alignment path, or an alignment whose acoustic fit falls short of the phone recogniser's free
  search: :func:`fits`) gives one warning and the detection result instead.

Audio is decoded with :func:`~voca_addon.core.speech.audio.load_audio`, channel 0 (VOCA's), resampled
to 16 kHz with the project's resampler (in 10 s blocks beyond 20 s) and cast to int16 (:func:`pcm_pieces`);
:func:`phones_for_pcm` decodes that PCM. The two halves can run in two processes: :mod:`.child` makes the
PCM here and decodes it in a child Python that never imports numpy (25 MB and the resampling's heap less
in the child, docs/phonemes.md "Cost"), which is why numpy and the audio modules are imported inside the
functions that need them.

Long audio (over :data:`~.segments.SEGMENT_MAX_S`, 20 s) is decoded in pieces cut at pauses
(:mod:`.segments`), each with fresh decoders, phones shifted by the piece's start: memory per piece,
not per clip. A transcript is aligned whole on audio up to :data:`ALIGN_WHOLE_MAX_S` (30 s); on longer
audio its words are shared out to the pieces and each piece is aligned alone (:mod:`.longalign`;
docs/phonemes.md, "Long audio").

Contract: numpy (inside the PCM functions) + stdlib (+ pocketsphinx, imported lazily); thread-safe (see
:mod:`.sphinx`).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import List, Optional, Tuple

from ..errors import InputError
from . import longalign, sphinx
from .sphinx import UNKNOWN_WORD
from .track import PhoneTrack, make_track

DEFAULT_METHOD = "words"
METHODS = ("words", "phones")
ALIGN_WHOLE_MAX_S = 30.0   # s: a transcript is aligned whole on audio up to this long (longer: piece by piece)
# The most a forced alignment's acoustic log-likelihood per 10 ms frame may fall short of the phone
# recogniser's free search of the same audio (PocketSphinx's per-frame-normalised scores, natural log;
# :func:`fits`): the 18 test clips' own transcripts (and their speakers' variants of the same sentence)
# ≤ 1.14e-3, another sentence ≥ 1.83e-3 (docs/phonemes.md, "Bad input").
FIT_MAX = 1.45e-3


def transcript_for(audio_path) -> Optional[str]:
    """The text of ``AUDIO.txt`` beside ``audio_path`` (same name, extension .txt), or None if absent.

    Raises
    ------
    InputError
        The .txt exists but cannot be read as UTF-8 text, or holds no words (empty, white space or
        punctuation only): every command and the panel refuse it alike, rather than some detecting and
        others failing.
    """
    txt = Path(os.fspath(audio_path)).with_suffix(".txt")
    if not txt.is_file():
        return None
    try:
        text = txt.read_text(encoding="utf-8-sig").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the transcript '{txt}': {exc}. Save it as UTF-8 text.") from None
    try:
        transcript_words(text)
    except InputError:
        raise InputError(f"the transcript '{txt}' beside the audio holds no words; write what is said in it, "
                         "or move it away to detect the phones from the audio.") from None
    return text


def transcript_words(text: str) -> List[str]:
    """Lower-case words of a transcript (punctuation dropped, inner apostrophes kept: "ron's").

    Raises
    ------
    InputError
        The transcript holds no word.
    """
    text = (text or "").replace("\u2019", "'").replace("\u2018", "'").lower()
    words = [w.strip("'") for w in re.split(r"[^\w']+", text)]
    words = [w for w in words if w and w != "_"]
    if not words:
        raise InputError("the transcript is empty (no words). Give the words spoken in the audio, or leave the "
                         "transcript out to detect the phones from the audio alone.")
    return words


RESAMPLE_BLOCK_S = 10.0     # s of input resampled at a time on long audio (the resampler's memory grows with its input)
RESAMPLE_MARGIN = 2000      # input samples of context on each side of a block (the filter reaches ~70 at 22 kHz → 16 kHz)


def _resample_blocks(mono, rate: int) -> bytes:
    """16 kHz int16 PCM of ``mono`` resampled block by block (bounded memory).

    Blocks start at multiples of the rational ratio's input period ``q`` (``rate / RATE = q / p`` in lowest
    terms), so every block's output samples sit at the very times a single call would give; each block is
    resampled with :data:`RESAMPLE_MARGIN` (rounded up to whole periods) of context on both sides and
    trimmed. Differences from one call: float round-off only (int16 casts equal up to rare 1-unit steps).
    """
    from ..speech.resample import resample
    g = math.gcd(int(rate), sphinx.RATE)
    q, p = int(rate) // g, sphinx.RATE // g
    margin = -(-RESAMPLE_MARGIN // q) * q
    block = max(q, int(RESAMPLE_BLOCK_S * rate) // q * q)
    n_out = int(len(mono) * sphinx.RATE / rate)
    out = []
    for start in range(0, len(mono), block):
        lo = max(0, start - margin)
        part = resample(mono[lo:min(len(mono), start + block + margin)], rate, sphinx.RATE)
        skip = (start - lo) // q * p
        out.append(sphinx.pcm16(part[skip:skip + block // q * p]))
    return b"".join(out)[:2 * n_out]


def _pcm(audio) -> Tuple[bytes, float]:
    from ..speech.audio import Audio, load_audio, select_channel
    from ..speech.resample import resample
    from . import segments
    if not isinstance(audio, Audio):
        audio = load_audio(audio)
    mono = select_channel(audio, 0).samples
    if audio.duration_s <= segments.SEGMENT_MAX_S:         # one piece: one call, as before
        return sphinx.pcm16(resample(mono, audio.rate, sphinx.RATE)), audio.duration_s
    return _resample_blocks(mono, audio.rate), audio.duration_s


def _phone_items(aligned, duration) -> list:
    items = []
    for word, _, _, phones in aligned:
        for phone, start, end in phones:
            items.append((phone, start, min(end, duration), word, "the aligner"))
    return items


def _detect_piece(pcm: bytes, duration: float, method: str, progress, span) -> list:
    """Detection items of one utterance (times from its start, ends within ``duration``)."""
    if method == "words":
        lexicon: dict = {}
        words = sphinx.recognise_words(pcm, progress, span, lexicon)
        aligned = sphinx.align_words(pcm, [w for w, _, _ in words], lexicon) if words else None
        if aligned is not None:
            return _phone_items(aligned, duration)
    loop = sphinx.phone_loop(pcm, progress, span)
    return [(p, s, min(e, duration), "", "the phone recogniser") for p, s, e in loop]


def _pieces(pcm: bytes):
    """(byte start, byte end, start s) of each piece to decode alone (:mod:`.segments`)."""
    import numpy as np
    from . import segments
    samples = np.frombuffer(pcm, dtype="<i2")
    return [(2 * a, 2 * b, a / sphinx.RATE) for a, b in segments.split_points(samples)]


def pcm_pieces(audio) -> Tuple[bytes, float, list]:
    """The detector's input: (16 kHz int16 PCM of channel 0, duration s, the pieces to decode alone).

    Raises
    ------
    AudioError
        The audio cannot be read.
    """
    pcm, duration = _pcm(audio)
    return pcm, duration, _pieces(pcm)


def _in_pieces(pcm: bytes, duration: float, decode, progress, pieces, span=(0.0, 0.9)) -> list:
    """``decode(piece_pcm, piece_duration, progress, span)`` on each piece; items shifted to clip time.

    Every piece gets fresh decoders, so the peak memory is that of one piece (≤ SEGMENT_MAX_S of audio).
    """
    out = []
    for k, (a, b, t0) in enumerate(pieces):
        end_s = duration if b >= len(pcm) else min(duration, t0 + (b - a) / 2 / sphinx.RATE)
        sub = (span[0] + (span[1] - span[0]) * k / len(pieces), span[0] + (span[1] - span[0]) * (k + 1) / len(pieces))
        for item in decode(pcm[a:b], end_s - t0, progress, sub):
            label, s, e = item[0], min(item[1] + t0, end_s), min(item[2] + t0, end_s)
            out.append((label, s, e) + tuple(item[3:]))
    return out


def _detect(pcm: bytes, duration: float, method: str, progress, pieces, warnings=()) -> PhoneTrack:
    if method not in METHODS:
        raise InputError(f"unknown detection method {method!r}; use one of {', '.join(METHODS)}.")
    items = _in_pieces(pcm, duration, lambda p, d, prog, span: _detect_piece(p, d, method, prog, span), progress,
                       pieces)
    return make_track(items, "detected", "the detector", None, warnings)


def _phone_loop(pcm: bytes, duration: float, progress, pieces, span, fit: Optional[dict] = None
                ) -> List[Tuple[str, float, float]]:
    """The phone recogniser on the whole clip, piece by piece (bounded memory); ``fit`` receives the sum
    of the pieces' acoustic fits (:func:`.sphinx.acoustic_fit`)."""
    return _in_pieces(pcm, duration, lambda p, d, prog, sp: sphinx.phone_loop(p, prog, sp, fit), progress,
                      pieces, span)


def fits(aligned_fit: dict, loop_fit: dict) -> bool:
    """Does a transcript fit the audio? Its forced alignment's acoustic log-likelihood per frame falls
    short of the phone recogniser's free search of the same audio by at most :data:`FIT_MAX`.

    The free search picks the best-scoring phones as it goes, so it scores about as well as any alignment
    can; the words actually said come close to it (a little above or below: its pruning and phone bigram),
    words that were not said must put wrong phones on the audio and fall well short (measured:
    docs/phonemes.md). No fit at all (no frames decoded) is no match."""
    frames = loop_fit.get("frames", 0)
    if not frames or "log" not in aligned_fit:
        return False
    return (loop_fit["log"] - aligned_fit["log"]) / frames <= FIT_MAX


def _fill_unknown(items, loop) -> list:
    """Replace each unknown word's silence span by the phone recogniser's phones inside it."""
    out = []
    for phone, start, end, word, where in items:
        if word != UNKNOWN_WORD:
            out.append((phone, start, end, word, where))
            continue
        for p, s, e in loop:
            s, e = max(s, start), min(e, end)
            if e > s:
                out.append((p, s, e, "", "the phone recogniser"))
    return out


def align_transcript(pcm: bytes, duration: float, text: str, method: str = DEFAULT_METHOD,
                     progress=None, pieces=None) -> PhoneTrack:
    """Forced alignment of ``text``; on a mismatch, one warning and detection (see module docstring).

    Audio longer than :data:`ALIGN_WHOLE_MAX_S` is aligned piece by piece (one utterance's memory grows
    with its length): :func:`.longalign.align_long`; no piece aligned → one warning and detection.
    ``pieces``: :func:`pcm_pieces`'s (computed from ``pcm`` when None).
    """
    pieces = _pieces(pcm) if pieces is None else pieces
    words = transcript_words(text)
    lexicon = sphinx.lexicon_of(words)
    unknown = [w for w in words if w not in lexicon]
    warnings = []
    names = ", ".join(f"'{w}'" for w in list(dict.fromkeys(unknown))[:8]) + (" …" if len(set(unknown)) > 8 else "")
    if unknown and not lexicon:          # nothing to align: the words detector, not the phone recogniser alone
        return _detect(pcm, duration, method, progress, pieces, [
            f"no word of the transcript is in the pronouncing dictionary ({names}): not English, or not what is "
            "said? The phones were detected from the audio instead."])
    if unknown:
        warnings.append(f"not in the pronouncing dictionary: {names}; the detector's phones are used there.")
    align_text = [w if w in lexicon else UNKNOWN_WORD for w in words]
    if progress is not None:
        progress(0.0, "phonemes")
    if duration > ALIGN_WHOLE_MAX_S:                    # piece by piece (longalign.py)
        items, more = longalign.align_long(
            pcm, duration, align_text, pieces, progress, _phone_items, fits, _fill_unknown,
            lambda p, d: _detect_piece(p, d, method, None, (0.0, 1.0)))
        if items is None:
            return _detect(pcm, duration, method, progress, pieces, [
                "the transcript does not match the audio (no piece of it could be aligned); the phones were "
                "detected from the audio instead."])
        return make_track(items, "aligned", "the aligner", None, warnings + more)
    aligned_fit, loop_fit = {}, {}
    aligned = sphinx.align_words(pcm, align_text, lexicon, aligned_fit)
    items = _phone_items(aligned, duration) if aligned is not None else []
    loop = _phone_loop(pcm, duration, progress, pieces, (0.3, 0.6), loop_fit)
    if aligned is None or not fits(aligned_fit, loop_fit):
        warning = ("the transcript does not match the audio (the aligner " +
                   ("found no path through it" if aligned is None else "had to put sounds on it that are not there")
                   + "); the phones were detected from the audio instead.")
        return _detect(pcm, duration, method, progress, pieces, [warning])
    track = make_track(_fill_unknown(items, loop), "aligned", "the aligner", None, warnings)
    if progress is not None:
        progress(1.0, "phonemes")
    return track


def phones_for_audio(audio, transcript: Optional[str] = None, progress=None,
                     method: str = DEFAULT_METHOD) -> PhoneTrack:
    """Phones of ``audio``: forced alignment of ``transcript`` if given, else detection.

    Parameters
    ----------
    audio : str, os.PathLike or Audio
        An audio file (any format :func:`load_audio` reads) or decoded audio.
    transcript : str, optional
        The words spoken. None → detection from the audio alone.
    progress : callable(fraction, stage), optional
    method : {"words", "phones"}
        Detection method (see the module docstring).

    Returns
    -------
    PhoneTrack
        source "aligned" or "detected"; times in seconds from the audio's start, within its length.

    Raises
    ------
    PhonemesUnavailable
        PocketSphinx cannot be imported in this Python (one line).
    InputError
        An empty transcript.
    AudioError
        The audio cannot be read.
    """
    if transcript is not None:
        transcript_words(transcript)           # an empty transcript is refused before any work
    sphinx.module()
    return phones_for_pcm(*pcm_pieces(audio), transcript, progress, method)


def phones_for_pcm(pcm: bytes, duration: float, pieces: list, transcript: Optional[str] = None, progress=None,
                   method: str = DEFAULT_METHOD) -> PhoneTrack:
    """:func:`phones_for_audio` on :func:`pcm_pieces`'s output (numpy-free but for transcripts of audio
    longer than :data:`ALIGN_WHOLE_MAX_S`: the child process's part)."""
    if transcript is not None:
        return align_transcript(pcm, duration, transcript, method, progress, pieces)
    track = _detect(pcm, duration, method, progress, pieces)
    if progress is not None:
        progress(1.0, "phonemes")
    return track
