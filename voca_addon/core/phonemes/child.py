"""The phoneme pass in a child Python process: truly beside the engine, on another core.

PocketSphinx holds the GIL while it decodes (see :mod:`.sphinx`): in a thread it slows every other
Python thread, most of all numpy code that releases and re-takes the GIL per operation (measured in
docs/phonemes.md). :func:`phones_in_process` runs :func:`~.stage.phones_for_audio` in two children of this
Python (``sys.executable``, this process's ``sys.path``), one after the other, so they share no GIL with
this process: the first reads the audio and makes its 16 kHz PCM and pieces (:func:`~.stage.pcm_pieces`,
numpy; about a second) and exits; the second decodes them (:func:`~.stage.phones_for_pcm`) without ever
importing numpy (its peak memory: docs/phonemes.md, "Cost"). Each gets one JSON line, then bytes, on its
stdin and answers on its stdout. Its result is the same PhoneTrack; a user error in the child is raised here as the same class with the same message; its
progress comes back on its stderr, and a progress callback that raises (a cancel) kills it.
:func:`child_python` says whether ``sys.executable`` can run the child at all (inside Blender's binary it
may not be a Python); callers fall back to a thread when it cannot.

Contract: stdlib only at import (the child imports the package; the call lends the engine's recurrence a core
while its children run, :func:`..speech.blas.core_lent`); call from any thread; blocking.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Optional

from .. import errors
from .cache import cached
from .track import Phone, PhoneTrack

# The child imports the package by its folder's name from the folder above it (inside Blender the
# extension is bl_ext.REPO.voca_addon, a name only Blender can import).
PACKAGE_DIR = Path(__file__).resolve().parents[2]
# The first child: the audio read and made 16 kHz PCM and pieces (numpy, a second or so), written to stdout as
# one JSON line and the PCM bytes; it exits before the decoder starts, so its memory never adds to the decoder's.
_PCM_CHILD = r"""
import json, sys, importlib
request = json.loads(sys.stdin.buffer.readline())
stage = importlib.import_module(request["package"] + ".core.phonemes.stage")
errors = importlib.import_module(request["package"] + ".core.errors")
try:
    pcm, duration, pieces = stage.pcm_pieces(request["audio"])
    sys.stdout.buffer.write(json.dumps({"duration": duration, "pieces": pieces}).encode() + b"\n" + pcm)
except errors.VocaError as exc:
    sys.stdout.buffer.write(json.dumps({"error": type(exc).__name__, "message": str(exc)}).encode() + b"\n")
"""
# The decoding child: that PCM in on stdin (after one JSON line), the track out; it never imports numpy. It reads
# all of stdin before it writes anything (the parent writes stdin first, then reads stderr): keep it so, or a
# child filling its stderr pipe while the parent still writes would wait on each other.
_CHILD = r"""
import json, sys, importlib
request = json.loads(sys.stdin.buffer.readline())
pcm = sys.stdin.buffer.read()
stage = importlib.import_module(request["package"] + ".core.phonemes.stage")
errors = importlib.import_module(request["package"] + ".core.errors")
last = [-1.0]
def progress(fraction, *_):
    if fraction - last[0] >= 0.01:
        last[0] = fraction
        sys.stderr.write("%s %.4f\n" % (request["tag"], fraction))
        sys.stderr.flush()
try:
    track = stage.phones_for_pcm(pcm, request["duration"], [tuple(p) for p in request["pieces"]],
                                 request["transcript"], progress, method=request["method"])
    reply = {"phones": [list(p) for p in track.phones], "source": track.source, "warnings": list(track.warnings)}
except errors.VocaError as exc:
    reply = {"error": type(exc).__name__, "message": str(exc)}
sys.stdout.write(json.dumps(reply))
"""
_TAG = "voca-phonemes-progress"
_PROBE = "import sys; sys.stdout.write(str(sys.hexversion))"
_python_ok: dict = {}


def child_python() -> bool:
    """True when ``sys.executable`` is a Python interpreter of this very version (so the child can import
    what this process imports); False otherwise — e.g. inside a Blender whose ``sys.executable`` is the
    ``blender`` binary, or empty. Checked once per process: by the file's name (``python*``, never another
    program is started), then by running it (it must print this ``sys.hexversion``)."""
    exe = sys.executable or ""
    if exe not in _python_ok:
        ok = os.path.basename(exe).lower().startswith("python") and os.path.isfile(exe)
        if ok:
            try:
                probe = subprocess.run([exe, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30)
                ok = probe.returncode == 0 and probe.stdout.strip() == str(sys.hexversion)
            except (OSError, subprocess.SubprocessError):
                ok = False
        _python_ok[exe] = ok
    return _python_ok[exe]


def _error_class(name: str):
    from . import sphinx
    return getattr(errors, name, None) or getattr(sphinx, name, None) or errors.VocaError


def phones_in_process(audio_path, transcript: Optional[str] = None, method: str = "words",
                      progress: Optional[Callable] = None) -> PhoneTrack:
    """:func:`phones_for_audio` on an audio *file*, computed in a child process.

    Parameters
    ----------
    audio_path : str or os.PathLike
    transcript : str, optional
    method : {"words", "phones"}
    progress : callable(fraction, stage), optional
        Called with the child's progress (stage "phonemes"); whatever it raises (a cancel) kills the child
        and is raised here.

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
    from .sphinx import module
    from .stage import transcript_words
    if transcript is not None:
        transcript_words(transcript)           # an empty transcript is refused before any work
    from ..speech.blas import core_lent     # not at the top: the decoding child imports this module, and no numpy
    module()
    package = PACKAGE_DIR.name
    with core_lent():                       # the engine's recurrence leaves the child a core (speech/blas.py)
        head, pcm = _run(_PCM_CHILD, {"package": package, "audio": os.fspath(audio_path)}, b"", None)
        request = {"package": package, "duration": head["duration"], "pieces": head["pieces"],
                   "transcript": transcript, "method": method, "tag": _TAG}
        reply, _ = _run(_CHILD, request, pcm, progress)
    phones = tuple(Phone(str(p), float(s), float(e), str(w)) for p, s, e, w in reply["phones"])
    return PhoneTrack(phones, reply["source"], tuple(reply["warnings"]))


def _run(script: str, request: dict, data: bytes, progress):
    """Run ``script`` in a child of this Python with ``request`` (one JSON line) and ``data`` on its stdin →
    (its stdout's first line as JSON, the bytes after it). Progress lines on its stderr go to ``progress``;
    whatever that raises kills the child. A user error the child reports is raised here (same class and
    message); a child that fails otherwise → RuntimeError with its stderr."""
    root = str(PACKAGE_DIR.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in sys.path if p]))
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    out: list = []
    reader = threading.Thread(target=lambda: out.append(child.stdout.read()), name="voca-phonemes-reader",
                              daemon=True)
    reader.start()
    other = []
    try:
        try:
            child.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            child.stdin.write(data)
            child.stdin.close()
        except OSError as exc:              # the child died before reading: its stderr says why (below)
            if not isinstance(exc, BrokenPipeError) and exc.errno != errno.EINVAL:     # (Windows: EINVAL)
                raise
            with contextlib.suppress(OSError):
                child.stdin.close()
        for line in map(lambda b: b.decode("utf-8", "replace"), child.stderr):
            if line.startswith(_TAG + " "):
                if progress is not None:
                    progress(float(line.split()[1]), "phonemes")
            else:
                other.append(line)
        child.wait()
        reader.join()
    except BaseException:
        child.kill()
        child.wait()
        raise
    whole = out[0] if out else b""
    end = whole.find(b"\n")
    end = len(whole) if end < 0 else end
    head, rest = whole[:end], memoryview(whole)[end + 1:]   # the PCM after the line, not copied (an hour: 115 MB)
    try:
        reply = json.loads(head.decode("utf-8"))
    except ValueError:
        raise RuntimeError(f"the phoneme process failed (exit {child.returncode}): "
                           f"{''.join(other).strip()[-2000:]}") from None
    if "error" in reply:
        raise _error_class(reply["error"])(reply["message"])
    return reply, rest


def phones_beside(audio, transcript: Optional[str] = None, progress: Optional[Callable] = None) -> PhoneTrack:
    """The phone pass to run beside the engine: :func:`phones_in_process` when ``audio`` is a file path and
    :func:`child_python` holds (no GIL shared with the engine), else ``phones_for_audio`` in this thread.

    Parameters
    ----------
    audio : str, os.PathLike or Audio
    transcript : str, optional
    progress : callable(fraction, stage), optional

    Returns
    -------
    PhoneTrack
        The same track either way (same errors, same classes and messages); an audio file's track is kept
        by its content (:mod:`.cache`) and read back the next time.

    Raises
    ------
    PhonemesUnavailable
        This Python cannot import PocketSphinx (checked here, before any child is started).
    """
    from .sphinx import module
    from .stage import phones_for_audio
    module()                    # PhonemesUnavailable when this Python cannot import PocketSphinx: the child neither
    if not isinstance(audio, (str, os.PathLike)):
        return phones_for_audio(audio, transcript, progress)
    if child_python():
        return cached(audio, transcript, lambda: phones_in_process(audio, transcript, progress=progress))
    return cached(audio, transcript, lambda: phones_for_audio(audio, transcript, progress))
