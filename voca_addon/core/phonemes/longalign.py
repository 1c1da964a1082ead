"""A transcript of long audio, aligned piece by piece in bounded memory.

Audio over :data:`~.stage.ALIGN_WHOLE_MAX_S` is cut at pauses into pieces of at most 20 s
(:mod:`.segments`, as detection is). The transcript's words are shared out to the pieces by the
full-vocabulary recogniser's pass on each piece: the transcript and the recognised words (each labelled
with its piece) are matched by a word-level edit distance on their pronunciations (:func:`share_words`,
two pieces at a time); each transcript word goes to the piece of the recognised word it is matched or
substituted with, and a word the recogniser missed goes with the word before it. Each piece is then
force-aligned with its words (fresh decoders per piece: the memory of one piece), checked against the
phone recogniser like a whole alignment (:func:`.stage.fits`), and its phones shifted by the piece's start.
A piece that does not align is retried with up to :data:`REPAIR_WORDS` words moved across its cuts, then
keeps that piece's detection (one warning naming the words and the time span); if no piece aligns, the
caller's "does not match" path runs.

Why the recogniser: the cuts fall in pauses, so only the words next to a cut are in doubt, and the
recogniser places most words within their own piece (it reads the VOCASET prompts nearly word for word).
Its pass costs what detection costs (docs/phonemes.md), the price of bounded memory on long audio.

Contract: numpy (imported inside the one function using it: the phoneme child runs numpy-free) + stdlib
(+ pocketsphinx through :mod:`.sphinx`); pure functions but for decoding.
"""
from __future__ import annotations

import difflib
from typing import Dict, List, Optional, Sequence, Tuple

from . import sphinx

GAP = 1.0               # edit cost of a word left out or added
SUBSTITUTE = 2.0        # cost of a substitution of words that sound nothing alike (alike: 0)
REPAIR_WORDS = 2       # words moved across a cut when a piece does not align
WINDOW_SLACK = 10     # transcript words beyond the two pieces' recognised words in one match


def share_words(words: Sequence[str], recognised: Sequence[Sequence[str]],
                sounds: Optional[Dict[str, Sequence[str]]] = None) -> List[List[int]]:
    """Indices of ``words`` per piece, two pieces at a time (bounded memory on any length).

    From the first word not yet given out, the next ``len(piece k) + len(piece j) + WINDOW_SLACK`` words
    are matched (:func:`match_pieces`) with the recognised words of piece k and of the next piece j that
    has any; those matched to piece k are its share (the words of a piece nothing was recognised in go
    to its neighbours). Same parameters and result as :func:`match_pieces`.
    """
    out: List[List[int]] = []
    pos, n, cache = 0, len(words), {}
    for k in range(len(recognised)):
        if k == len(recognised) - 1:
            out.append(list(range(pos, n)))
            break
        later = next((j for j in range(k + 1, len(recognised)) if recognised[j]), None)
        if later is None:                       # no word recognised after this piece: the rest is its
            out.append(list(range(pos, n)))
            out += [[] for _ in range(k + 1, len(recognised))]
            break
        size = len(recognised[k]) + len(recognised[later]) + WINDOW_SLACK
        window = list(words[pos:pos + size])
        take = match_pieces(window, [recognised[k], recognised[later]], sounds, cache)[0] if window else []
        out.append([pos + t for t in take])
        pos += len(take)
    return out


def substitution_cost(a: str, b: str, sounds: Optional[Dict[str, Sequence[str]]] = None) -> float:
    """0 for the same word; else :data:`SUBSTITUTE` × (1 − the similarity, ``difflib`` ratio, of their
    pronunciations (``sounds``: word → phones) or, for a word without one, of their spellings).

    A substitution of words that sound nothing alike costs as much as leaving one out and adding the
    other (2 × :data:`GAP`), so a word the recogniser missed next to a cut is left out rather than paired
    with the first word across the cut (measured: "… for yachting | she had a …" heard as "… forgot |
    should have said …" put "yachting" after the cut with substitutions costing at most 1 × GAP)."""
    if a == b:
        return 0.0
    sa, sb = (sounds or {}).get(a), (sounds or {}).get(b)
    if sa is None or sb is None:
        sa, sb = a, b
    return SUBSTITUTE * (1.0 - difflib.SequenceMatcher(None, list(sa), list(sb), autojunk=False).ratio())


def match_pieces(words: Sequence[str], recognised: Sequence[Sequence[str]],
                 sounds: Optional[Dict[str, Sequence[str]]] = None, cache: Optional[dict] = None) -> List[List[int]]:
    """Indices of ``words`` per piece, by one word-level edit distance over all of them.

    Parameters
    ----------
    words : sequence of str [W]
        The transcript's words, lower case.
    recognised : sequence [K] of sequences of str
        Each piece's recognised words, lower case.
    sounds : dict, optional
        word → its phones (the dictionary's first pronunciation): substitutions cost by how different
        they sound (:func:`substitution_cost`), a word left out or added costs :data:`GAP`.
    cache : dict, optional
        (word, word) → substitution cost, kept between calls.

    Returns
    -------
    list [K] of lists of int
        Contiguous, in order, covering 0..W-1 (a piece may get none). A transcript word goes to the piece
        of the recognised word it is matched or substituted with; one the recogniser missed goes with the
        word before it (the first ones: with the first matched).
    """
    import numpy as np      # here, not at the top: the phoneme child imports this module without numpy
    hyp = [(w, k) for k, piece in enumerate(recognised) for w in piece]
    n, m = len(words), len(hyp)
    pairs: dict = {} if cache is None else cache
    for w in set(words):
        for h in {h for h, _ in hyp}:
            if (w, h) not in pairs:
                pairs[w, h] = substitution_cost(w, h, sounds)
    sub = np.array([[pairs[w, h] for h, _ in hyp] for w in words], np.float64).reshape(n, m)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0] = np.arange(n + 1) * GAP
    cost[0, :] = np.arange(m + 1) * GAP
    steps = GAP * np.arange(m + 1)
    for i in range(1, n + 1):
        row = np.minimum(cost[i - 1, :-1] + sub[i - 1], cost[i - 1, 1:] + GAP)     # [m]: j = 1..m
        # insertions run along the row: cost[i, j] = min over j' ≤ j of (row or cost[i, 0]) + GAP · (j − j')
        cost[i] = np.minimum.accumulate(np.concatenate([[cost[i, 0]], row - steps[1:]])) + steps
    piece: List[Optional[int]] = [None] * n
    i, j = n, m
    while i > 0 and j > 0:
        if abs(cost[i, j] - (cost[i - 1, j - 1] + sub[i - 1, j - 1])) < 1e-9:
            piece[i - 1] = hyp[j - 1][1]
            i, j = i - 1, j - 1
        elif abs(cost[i, j] - (cost[i - 1, j] + GAP)) < 1e-9:
            i -= 1
        else:
            j -= 1
    known = [k for k in piece if k is not None]
    last = known[0] if known else 0
    for t in range(n):                         # a missed word goes with the word before it
        if piece[t] is None:
            piece[t] = last
        last = max(last, piece[t])
        piece[t] = last                        # monotone
    out: List[List[int]] = [[] for _ in recognised]
    for t, k in enumerate(piece):
        out[k].append(t)
    return out


def align_long(pcm: bytes, duration: float, words: Sequence[str], pieces, progress,
               phone_items, fits, fill_unknown, detect_piece) -> Tuple[Optional[list], List[str]]:
    """Phone items of the transcript aligned piece by piece, and warnings (None if no piece aligned).

    ``pieces``: [(byte start, byte end, start s)] (:func:`.stage._pieces`); ``words`` may hold
    :data:`~.sphinx.UNKNOWN_WORD`; the callables are the stage's own (items, acoustic fit, unknown words,
    one piece's detection) so the pieces are judged exactly like a whole alignment. A piece whose share
    does not align is tried again with up to :data:`REPAIR_WORDS` words moved across each of its cuts
    (the recogniser can misplace the words next to a cut); still failing, it keeps the detector's phones.
    """
    spans, recognised = [], []
    k_total = len(pieces)
    for k, (a, b, t0) in enumerate(pieces):
        end_s = duration if b >= len(pcm) else min(duration, t0 + (b - a) / 2 / sphinx.RATE)
        spans.append((t0, end_s))
        sub = (0.5 * k / k_total, 0.5 * (k + 1) / k_total)
        recognised.append([w for w, _, _ in sphinx.recognise_words(pcm[a:b], progress, sub)])
    vocabulary = sorted({w for w in words if w != sphinx.UNKNOWN_WORD} | {w for r in recognised for w in r})
    sounds = {w: p.split() for w, p in zip(vocabulary, sphinx.dictionary_words(vocabulary)) if p}
    shares = share_words(words, recognised, sounds)
    loops: dict = {}

    def attempt(k: int, share: List[int]):
        """Piece k aligned with ``share`` (its items, piece time) or None."""
        if not share:
            return None
        a, b, _ = pieces[k]
        aligned_fit: dict = {}
        aligned = sphinx.align_words(pcm[a:b], [words[t] for t in share], None, aligned_fit)
        if aligned is None:
            return None
        got = phone_items(aligned, spans[k][1] - spans[k][0])
        if k not in loops:
            loop_fit: dict = {}
            loops[k] = sphinx.phone_loop(pcm[a:b], fit=loop_fit), loop_fit
        loop, loop_fit = loops[k]
        return fill_unknown(got, loop) if fits(aligned_fit, loop_fit) else None

    def repair(k: int, results: list):
        """Move up to REPAIR_WORDS words across piece k's cuts until it (and a changed neighbour) aligns."""
        for d in range(1, REPAIR_WORDS + 1):
            ahead, behind = k + 1 < k_total and len(shares[k]) > d, k > 0 and results[k - 1] is not None
            if behind and len(shares[k]) > d:               # its first d words were said before the cut
                prev, cur = attempt(k - 1, shares[k - 1] + shares[k][:d]), None
                cur = attempt(k, shares[k][d:]) if prev is not None else None
                if cur is not None:
                    shares[k - 1], shares[k], results[k - 1] = shares[k - 1] + shares[k][:d], shares[k][d:], prev
                    return cur
            if ahead:                                       # its last d words were said after the cut
                cur = attempt(k, shares[k][:-d])
                if cur is not None:
                    shares[k + 1] = shares[k][-d:] + shares[k + 1]
                    shares[k] = shares[k][:-d]
                    return cur
            if behind and len(shares[k - 1]) > d:           # the last d words of the piece before are its
                prev = attempt(k - 1, shares[k - 1][:-d])
                cur = attempt(k, shares[k - 1][-d:] + shares[k]) if prev is not None else None
                if cur is not None:
                    shares[k] = shares[k - 1][-d:] + shares[k]
                    shares[k - 1], results[k - 1] = shares[k - 1][:-d], prev
                    return cur
        return None

    results: list = [None] * k_total
    for k in range(k_total):
        if progress is not None:
            progress(0.5 + 0.5 * k / k_total, "phonemes")
        results[k] = attempt(k, shares[k])
        if results[k] is None and shares[k]:
            results[k] = repair(k, results)
    if all(r is None for r in results):
        return None, []
    items, warnings = [], []
    for k, ((a, b, _), (t0, end_s)) in enumerate(zip(pieces, spans)):
        got = results[k]
        if got is None:
            if shares[k]:
                warnings.append(f"the transcript's words {words[shares[k][0]]!r}…{words[shares[k][-1]]!r} could not "
                                f"be aligned in {t0:.1f}–{end_s:.1f} s; the phones there were detected from the audio.")
            got = detect_piece(pcm[a:b], end_s - t0)
        for item in got:
            items.append((item[0], min(item[1] + t0, end_s), min(item[2] + t0, end_s)) + tuple(item[3:]))
    return items, warnings
