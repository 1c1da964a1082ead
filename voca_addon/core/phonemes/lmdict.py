"""The recogniser's dictionary: the CMU pronouncing dictionary cut to the words its language model knows.

PocketSphinx's full-vocabulary search ignores every dictionary word that the language model does not
know (the lexical tree, the flat search and the lattice all skip them: ``ngram_model_set_known_wid``),
yet the 134k-word dictionary is loaded whole: ~22 MB of the recogniser's memory for words it never
searches. :func:`recogniser_dictionary` gives a dictionary file holding only the lines whose word (its
alternates ``word(2)``… included, in the original order) the en-us trigram LM knows (79k of 135k lines):
the same search, the same results (tracks equal on the 18 test clips; docs/phonemes.md, "Cost"), 13 MB
less.

It is built once per PocketSphinx installation (0.5 s of CPU: the LM is loaded to ask it each word)
into the cache folder (:func:`~voca_addon.core.caches.cache_dir` ``/recogniser/``; kept whether or not
phone tracks are, ``VOCA_PHONE_CACHE``: it is no track), named by a hash of the
dictionary and LM files' paths, sizes and dates and PocketSphinx's version, written through
:mod:`voca_addon.core.outputs` (a temporary renamed into place: concurrent builders are harmless).
When it cannot be written (a read-only cache), the full dictionary is used: the same results, more
memory.

Contract: stdlib (+ pocketsphinx, imported by the caller's :func:`.sphinx.module`); thread-safe.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Optional

from ..caches import cache_dir

DICTIONARY = "en-us/cmudict-en-us.dict"     # inside PocketSphinx's model folder
LANGUAGE_MODEL = "en-us/en-us.lm.bin"
_lock = threading.Lock()


def _key(ps, dictionary: Path, lm: Path) -> str:
    h = hashlib.sha256()
    for path in (dictionary, lm):
        st = path.stat()
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    h.update(str(getattr(ps, "__version__", "")).encode())
    return h.hexdigest()[:24]


def lm_lines(ps, dictionary: Path, lm: Path) -> str:
    """The lines of ``dictionary`` whose base word (``word`` of ``word(2)``) the LM ``lm`` knows, in order."""
    model = ps.NGramModel(ps.Config(lm=None), ps.LogMath(), str(lm))
    zero = model.prob(["voca-no-such-word"])        # an unknown word's score: log-zero
    known: dict = {}
    out = []
    with open(dictionary, encoding="utf-8") as f:
        for line in f:
            parts = line.split(None, 1)
            if not parts:
                continue
            word = parts[0].split("(")[0]
            if word not in known:
                known[word] = model.prob([word]) != zero
            if known[word]:
                out.append(line if line.endswith("\n") else line + "\n")
    return "".join(out)


def recogniser_dictionary(ps) -> Optional[str]:
    """Path of the LM-cut dictionary for ``ps`` (the pocketsphinx module), built on first use; None when it
    cannot be built or kept (use the full dictionary then)."""
    from ..errors import VocaError
    from ..outputs import write_exact
    dictionary, lm = Path(ps.get_model_path(DICTIONARY)), Path(ps.get_model_path(LANGUAGE_MODEL))
    try:
        key = _key(ps, dictionary, lm)
    except OSError:
        return None
    path = cache_dir() / "recogniser" / f"cmudict-{key}.dict"
    with _lock:
        if not path.is_file():
            try:
                text = lm_lines(ps, dictionary, lm)
                path.parent.mkdir(parents=True, exist_ok=True)
                write_exact(path, lambda temp: temp.write_text(text, "utf-8"), fault_points=False)
            except (OSError, RuntimeError, VocaError):
                return None                         # unwritable cache (or no LM): the full dictionary
    return os.fspath(path)
