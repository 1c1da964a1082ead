"""The phoneme pass in a child Python process: truly beside the engine, on another core.

PocketSphinx holds the GIL while it decodes (see :mod:`.sphinx`): in a thread it slows every other
Python thread, most of all numpy code that releases and re-takes the GIL per operation (measured in
docs/phonemes.md). :func:`phones_in_process` runs :func:`~.stage.phones_for_audio` in a child of this
Python (``sys.executable``, this process's ``sys.path``), so the two share no GIL. Its result is the same
PhoneTrack; a user error in the child is raised here as the same class with the same message.

Contract: stdlib only here (the child imports the package); call from any thread; blocking.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

from .. import errors
from .track import Phone, PhoneTrack

# The child imports the package by its folder's name from the folder above it (inside Blender the
# extension is bl_ext.REPO.voca_addon, a name only Blender can import).
PACKAGE_DIR = Path(__file__).resolve().parents[2]
_CHILD = r"""
import json, sys, importlib
request = json.loads(sys.stdin.read())
stage = importlib.import_module(request["package"] + ".core.phonemes.stage")
errors = importlib.import_module(request["package"] + ".core.errors")
try:
    track = stage.phones_for_audio(request["audio"], request["transcript"], method=request["method"])
    reply = {"phones": [list(p) for p in track.phones], "source": track.source, "warnings": list(track.warnings)}
except errors.VocaError as exc:
    reply = {"error": type(exc).__name__, "message": str(exc)}
sys.stdout.write(json.dumps(reply))
"""


def _error_class(name: str):
    from . import sphinx
    return getattr(errors, name, None) or getattr(sphinx, name, None) or errors.VocaError


def phones_in_process(audio_path, transcript: Optional[str] = None, method: str = "words") -> PhoneTrack:
    """:func:`phones_for_audio` on an audio *file*, computed in a child process.

    Parameters
    ----------
    audio_path : str or os.PathLike
    transcript : str, optional
    method : {"words", "phones"}

    Returns
    -------
    PhoneTrack
        Equal to ``phones_for_audio(audio_path, transcript, method=method)``.

    Raises
    ------
    VocaError
        The child's user error, same class and message (PhonemesUnavailable, InputError, AudioError).
    RuntimeError
        The child failed otherwise (a bug; its stderr is in the message).
    """
    root = str(PACKAGE_DIR.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in sys.path if p]))
    request = {"package": PACKAGE_DIR.name, "audio": os.fspath(audio_path), "transcript": transcript, "method": method}
    done = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(request), capture_output=True,
                          text=True, env=env)
    try:
        reply = json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"the phoneme process failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    if "error" in reply:
        raise _error_class(reply["error"])(reply["message"])
    phones = tuple(Phone(str(p), float(s), float(e), str(w)) for p, s, e, w in reply["phones"])
    return PhoneTrack(phones, reply["source"], tuple(reply["warnings"]))
