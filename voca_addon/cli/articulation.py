"""The articulation flags of the commands that know the audio: lips that close on p/b/m, tuck on f/v.

``animate``, ``infer AUDIO``, ``import-sequence --audio``, ``batch`` (and ``retarget --audio``) share four
flags, one meaning everywhere:

* ``--transcript TEXT|FILE.txt`` — what is said: forced alignment instead of detection (more exact). A
  value ending in ``.txt``, or naming an existing file, is read as a UTF-8 file; otherwise it is the text.
  An alignment file (``.TextGrid`` / ``.json`` / ``.tsv``) given here is refused: it belongs to
  ``--alignment``. Without it, ``AUDIO.txt`` beside the audio is used when present
  (:func:`core.phonemes.transcript_for`) — read only when phones are wanted (not with ``--no-closures`` and
  no ``--phonemes``).
* ``--alignment FILE`` — phones the user already has: Praat TextGrid (Montreal Forced Aligner), Rhubarb
  Lip Sync's TSV / JSON, or the project's JSON / TSV. It is read and checked before any computing.
* ``--no-closures`` — the exact VOCA result: no correction keys. The phones are still found and written
  when ``--alignment`` or ``--phonemes`` asks for them (the ``.npz`` then holds the phones without
  corrections); otherwise the phoneme pass does not run at all.
* ``--phonemes OUT`` — also write the phone track as ``.json`` / ``.tsv`` / ``.TextGrid``.

A SOURCE that stores phones (``import-sequence`` / ``retarget`` of an ``.npz`` written by ``infer``,
``animate --npz`` or ``batch``) brings them along: without ``--alignment`` / ``--transcript`` they are the
clip's phones (closures and ``--phonemes``), not detected again, and the report says so
(:func:`source_phones`); an explicit flag still wins on an exact source (on a corrected one it is refused:
:func:`refuse_new_phones_for_corrected`).

Closures are on by default. Refused before anything is computed or written (InputError, exit 2, one
line): a ``--transcript`` file missing or empty, an empty ``--transcript`` text, an alignment file given to
``--transcript``, ``--transcript`` together with ``--alignment``, a flag without the audio (each command's
message names its own way to give it: ``no_audio`` of :func:`plan`), a bad ``--alignment`` file (the
phoneme reader's message), ``--phonemes`` with another extension, and — when PocketSphinx cannot be
imported in this Python — a ``--transcript`` or ``--phonemes`` that needs detection or alignment. With
closures merely on by default (or a ``.txt`` beside the audio) and no PocketSphinx, one ``warning:`` line
says so and the run goes on with the exact VOCA result ("never a failed import").

The phone pass runs beside DeepSpeech (:class:`PhonePass`, a thread that waits on a child Python doing the
decoding: PocketSphinx holds the GIL while it decodes, so in this process it would starve the numpy engine;
in a thread of this process only when the audio is an ``Audio`` — a channel other than 0 — or
``sys.executable`` is not a Python that can run the child). Long audio is decoded in pieces of at most
20 s, so the pass's memory does not grow with the clip (docs/phonemes.md).

Contract: stdlib only at import (``--help`` stays instant); the core (numpy, ``core.phonemes``,
``core.articulation``) is imported when a command runs. Any thread.
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..core.errors import InputError, missing_file

PHONEME_SUFFIXES = (".json", ".tsv", ".textgrid")    # what --phonemes writes and --alignment reads
PHONEME_FORMATS = ".json, .tsv or .TextGrid"         # PHONEME_SUFFIXES as every message and help names them
AUDIO_HINT = "give it with --audio WAV"               # retarget's / import-sequence's way to give the audio


def add_args(p, batch: bool = False) -> None:
    """The flags on an argparse parser. ``batch``: only ``--no-closures`` and ``--phonemes EXT`` (each
    clip's transcript / alignment comes from the CSV's ``transcript`` / ``alignment`` columns or a ``.txt``
    beside its audio)."""
    g = p.add_argument_group("articulation (lips that close on p/b/m, tuck on f/v)")
    if not batch:
        g.add_argument("--transcript", metavar="TEXT|FILE.txt", help="what is said (text, or a .txt file): "
                       "forced alignment instead of detection; default: AUDIO.txt beside the audio, if any. Detection "
                       "and alignment are US English: for another language give --alignment")
        g.add_argument("--alignment", metavar="FILE", help="phones from a TextGrid (MFA), a Rhubarb .tsv/.json "
                       "or this add-on's .json/.tsv instead of detecting them")
    g.add_argument("--no-closures", action="store_true", help="the exact VOCA result: no lip-closure keys")
    if batch:
        g.add_argument("--phonemes", metavar="EXT", help="also write each clip's phones as NAME.phonemes.EXT "
                       "(json, tsv or TextGrid)")
    else:
        g.add_argument("--phonemes", metavar="OUT", help=f"also write the phone track: {PHONEME_FORMATS}")


@dataclass(frozen=True)
class Plan:
    """What the articulation flags ask for one clip, checked.

    Attributes
    ----------
    closures : bool           correction keys wanted (and possible)
    transcript : str or None  the text to align (None: detection, or an alignment)
    transcript_source : str   where the transcript came from: ``"text"``, the file's path, or ``"none"``
    track : PhoneTrack or None    the phones read from ``--alignment`` or stored in SOURCE (read at check time)
    phonemes_out : str or None    where to write the phones
    warnings : tuple of str   one line each, to show the user (e.g. detection unavailable)
    origin : str              where ``track`` was read when that is not ``--alignment``, for the report:
                              ``"stored in 'a.npz'"`` (the SOURCE's phones), else ""
    """
    closures: bool
    transcript: Optional[str] = None
    transcript_source: str = "none"
    track: Optional[object] = None
    phonemes_out: Optional[str] = None
    warnings: Tuple[str, ...] = field(default=())
    origin: str = ""

    @property
    def needs_pass(self) -> bool:
        """Whether the phone pass (detection or alignment) must run on the audio."""
        return self.track is None and (self.closures or self.phonemes_out is not None)

    @property
    def wants_phones(self) -> bool:
        return self.track is not None or self.needs_pass


def read_text_file(path, what: str, hint: str = "") -> str:
    """The UTF-8 text of the file ``path`` (a BOM dropped); InputError naming it as ``what`` when it is no file
    (with ``hint``) or not UTF-8."""
    if not os.path.isfile(path):
        raise missing_file(what, path, hint)
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except UnicodeDecodeError:
        raise InputError(f"{what} '{path}' is not UTF-8 text; save it as UTF-8.") from None


def refuse_alignment_as_transcript(value, flag: str = "--transcript") -> None:
    """InputError when a transcript value names an alignment file (``.TextGrid`` / ``.json`` / ``.tsv``: an
    existing file, or a single word): phones with times, which ``--alignment`` reads, not what is said. Text
    that merely ends in such a word ("saved as notes.json") stays text."""
    value = str(value)
    if value.lower().endswith(PHONEME_SUFFIXES) and (os.path.isfile(value) or len(value.split()) == 1):
        where = f"give it as --alignment {value}" if flag.startswith("--") else "put it in the CSV's alignment column"
        raise InputError(f"{flag} '{value}' is an alignment file (phones with times), not what is said: {where}.")


def read_transcript(value: str, flag: str = "--transcript") -> Tuple[str, str]:
    """(text, source) of a ``--transcript`` value: a ``.txt`` / existing file is read, else the text itself.

    Raises
    ------
    InputError
        The file is missing, unreadable, not UTF-8 or holds only white space; the text is empty; the value
        is an alignment file (:func:`refuse_alignment_as_transcript`).
    """
    value = str(value)
    refuse_alignment_as_transcript(value, flag)
    if value.lower().endswith(".txt") or os.path.isfile(value):
        path = os.path.abspath(value)
        text = read_text_file(value, f"{flag} file", ", or give the words themselves in quotes")
        if not text.strip():
            raise InputError(f"{flag} file '{value}' is empty; write what is said into it, or leave "
                             f"{flag} out to detect the phones from the audio.")
        return " ".join(text.split()), path
    if not value.strip():
        raise InputError(f"{flag} is empty; give what is said, or leave {flag} out to detect the phones "
                         "from the audio.")
    return " ".join(value.split()), "text"


def audio_duration(path: str) -> float:
    """Seconds of the audio file (a WAV from its header; other formats decoded)."""
    from ..core.speech import audio, wavstream
    stream = wavstream.open_wav(path, 0, min_seconds=0.0)
    return stream.duration_s if stream is not None else audio.load_audio(path).duration_s


FRAMES_TOLERANCE = 2      # frames: animate / infer make round(duration × fps) frames of a clip (half a frame
                          # off at most); other tools may floor, ceil or add a frame


def check_audio_length(audio_path: str, frames: int, fps: float, source, seconds: Optional[float] = None,
                       refuse: bool = True) -> None:
    """``--audio`` whose length is not the motion's: SOURCE's ``frames`` at ``fps`` must span the audio's
    ``seconds`` (read from the file when not given) within :data:`FRAMES_TOLERANCE` frames. Where phones are
    taken from it (``refuse``: closures on, or ``--phonemes``) another clip's recording would key closures
    against this motion: refused. Where it is only the sound strip (``--no-closures``) one warning on stderr:
    a longer take or room tone may be meant.

    Raises
    ------
    InputError
        One line naming both lengths (``refuse``).
    """
    seconds = audio_duration(audio_path) if seconds is None else float(seconds)
    if abs(seconds * fps - frames) <= FRAMES_TOLERANCE:
        return
    lengths = (f"--audio '{audio_path}' is {seconds:.3f} s long, but SOURCE '{source}' is {frames} frames at {fps:g} "
               f"fps ({frames / fps:.3f} s)")
    if refuse:
        raise InputError(f"{lengths}: is it the recording of another clip? Give this motion's recording (or the "
                         "motion's own --fps).")
    print(f"warning: {lengths}; it is added as the sound only (no phones are taken from it), so the sound and "
          "the motion end apart.", file=sys.stderr)


def check_channel(audio_path: str, channel, read: bool, clip=None) -> None:
    """``--channel`` checked before any computing: a channel that does not exist is refused; when the phone
    pass will ``read`` it, a silent channel too (:func:`core.speech.audio.select_channel`). ``clip``: the
    audio when already decoded."""
    if channel == 0 and not read:
        return
    from ..core.speech import audio
    clip = audio.load_audio(audio_path) if clip is None else clip
    if read:
        audio.select_channel(clip, channel)
    else:
        audio.to_mono(clip, channel)


def check_phonemes_out(path: Optional[str], overwrite: bool = False) -> Optional[str]:
    """``--phonemes OUT`` checked like every destination: extension, folder, not existing (or overwrite)."""
    if path is None:
        return None
    from ..core import outputs
    if not str(path).lower().endswith(PHONEME_SUFFIXES):
        raise InputError(f"--phonemes '{path}' must end in {PHONEME_FORMATS} (the format is chosen "
                         "by the extension).")
    return str(outputs.check_output(path, "--phonemes", PHONEME_SUFFIXES, overwrite))


def source_phones(source) -> Optional[object]:
    """The phone track stored in SOURCE — an ``.npz`` written by ``infer``, ``animate --npz`` or ``batch``
    (``phones``, ``phone_times``…) — or None (no such arrays, or SOURCE is no ``.npz`` file).

    Raises InputError naming SOURCE when it is a damaged ``.npz`` or its phone arrays disagree."""
    if source is None or not str(source).lower().endswith(".npz") or not os.path.isfile(source):
        return None
    from ..core.animation import npzextras
    return npzextras.read_phones(str(source))


def plan_from_args(args, audio_path: Optional[str], overwrite: bool = False, source: Optional[str] = None,
                   no_audio: Optional[str] = None) -> Plan:
    """:func:`plan` for a command's parsed flags (``--transcript``, ``--alignment``, ``--no-closures``,
    ``--phonemes``). ``source``: the command's SOURCE file, whose stored phones (:func:`source_phones`) are
    the clip's when no flag gives others; ``no_audio``: see :func:`plan`."""
    stored = source_phones(source) if audio_path is not None else None
    return plan(audio_path, closures=not getattr(args, "no_closures", False),
                transcript=getattr(args, "transcript", None), alignment=getattr(args, "alignment", None),
                phonemes=getattr(args, "phonemes", None), overwrite=overwrite, no_audio=no_audio,
                stored=stored, stored_in=source)


def plan(audio_path: Optional[str], closures: bool = True, transcript: Optional[str] = None,
         alignment: Optional[str] = None, phonemes: Optional[str] = None, overwrite: bool = False,
         flag: str = "--transcript", beside: bool = True, no_audio: Optional[str] = None,
         stored=None, stored_in: Optional[str] = None) -> Plan:
    """Check what one clip asks for, before any computing; raises InputError for a refused input.

    Parameters
    ----------
    audio_path : str or None
        The clip's audio (None: no audio, so no phones: any articulation input is refused).
    closures : bool
        False: ``--no-closures``.
    transcript : str, optional
        ``--transcript``'s value (text or a ``.txt`` file), or a per-clip text (the batch's CSV column,
        with ``flag`` naming it). Without it, ``AUDIO.txt`` beside the audio is used when ``beside`` and
        phones are wanted (closures on, or ``phonemes``): with neither it is not read at all.
    alignment, phonemes : str, optional
        ``--alignment`` file to read; ``--phonemes`` destination.
    no_audio : str, optional
        The refusal when ``audio_path`` is None and a flag needs it (the command's own way to give the
        audio); default: ``the articulation flags (…) need the audio: give it with --audio WAV``.
    stored, stored_in : PhoneTrack, str, optional
        The phones stored in the command's SOURCE file (:func:`source_phones`) and its path: the clip's
        phones unless ``transcript`` or ``alignment`` is given (then those win).
    """
    out = check_phonemes_out(phonemes, overwrite)
    if audio_path is None:
        given = [f for f, v in (("--transcript", transcript), ("--alignment", alignment), ("--phonemes", out))
                 if v is not None]
        if given:
            raise InputError(no_audio.format(flags=" and ".join(given)) if no_audio else
                             f"the articulation flags ({', '.join(given)}) need the audio: {AUDIO_HINT}.")
        return Plan(closures=False)
    if transcript is not None and alignment is not None:
        raise InputError(f"give {flag} or --alignment, not both (an alignment file already holds the phones).")
    if alignment is not None:
        what = "--alignment file" if flag == "--transcript" else "alignment file"   # the batch's CSV column
        return Plan(closures, track=read_alignment(alignment, audio_path, what), phonemes_out=out)
    if transcript is None and stored is not None:        # the SOURCE's own phones: not detected again
        from ..core.phonemes.track import END_TOLERANCE_S
        last = max((p.end for p in stored.phones), default=0.0)
        length = audio_duration(audio_path)
        if last > length + END_TOLERANCE_S:             # checked like an --alignment file's times
            raise InputError(f"the phones stored in '{stored_in}' run to {last:.3f} s, past the end of "
                             f"'{audio_path}' ({length:.3f} s): is this the audio of another clip?")
        return Plan(closures, track=stored, phonemes_out=out,
                    origin=f"stored in '{os.path.basename(str(stored_in))}'")
    text, source = read_transcript(transcript, flag) if transcript is not None else (None, "none")
    if text is None and beside and (closures or out is not None):     # no phones wanted: not even read
        from ..core.phonemes import transcript_for
        found = transcript_for(audio_path)             # one that holds no words is refused there
        if found is not None:
            text, source = " ".join(found.split()), os.path.splitext(os.path.abspath(audio_path))[0] + ".txt"
    result = Plan(closures, text, source, None, out)
    if not result.needs_pass:
        if transcript is not None:      # read and checked, then unused: say so rather than drop it silently
            return Plan(closures, text, source, None, out, (
                f"{flag} is not used: with --no-closures the phones are only made for --phonemes",))
        return result
    from ..core.phonemes import detector_available
    ok, reason = detector_available()
    if ok:
        return result
    if transcript is not None or out is not None:
        raise InputError(f"{_one_line(reason)} — {flag if transcript is not None else '--phonemes'} needs "
                         "it; use --alignment FILE (a TextGrid or Rhubarb file) or leave the flag out.")
    return Plan(False, None, "none", None, None,
                (f"no lip closures: {_one_line(reason)} (give --alignment FILE to close the lips without it)",))


def read_alignment(path: str, audio_path: str, what: str = "--alignment file"):
    """The phones of an ``--alignment`` file (``what`` names it in messages), checked against the audio's
    duration (InputError otherwise)."""
    if not os.path.isfile(path):
        raise missing_file(what, path)
    from ..core.phonemes import read_alignment as read
    return read(os.path.abspath(path), audio_duration(audio_path))


def _one_line(text) -> str:
    return " ".join(str(text).split()).rstrip(".")


def audio_source(audio_path: str, channel=0):
    """What the phone pass reads: the path (channel 0), else the chosen channel as a loaded Audio."""
    if channel == 0:
        return audio_path
    from ..core.speech import audio
    return audio.select_channel(audio.load_audio(audio_path), channel)


def find_phones(plan: Plan, audio):
    """The phone track of one clip: the plan's alignment, else detection / alignment of its transcript on
    ``audio`` (a path or an ``Audio``) — in a child Python when ``audio`` is a path and ``sys.executable`` can
    run one (:func:`~voca_addon.core.phonemes.phones_beside`), else in this thread; None when no phones are
    wanted."""
    if not plan.needs_pass:
        return plan.track
    from ..core.phonemes import phones_beside
    return phones_beside(audio, plan.transcript)


class PhonePass:
    """The phone pass of one clip in a daemon thread, started at once; :meth:`result` waits for it.

    ``PhonePass(plan, audio)``: ``audio`` a path or an ``Audio``. With nothing to run (the plan's track
    is already read, or no phones are wanted) no thread is started.
    """

    def __init__(self, plan: Plan, audio):
        self.plan, self._track, self._error = plan, plan.track, None
        self._thread = None
        if plan.needs_pass:
            self._thread = threading.Thread(target=self._run, args=(audio,), name="voca-phonemes", daemon=True)
            self._thread.start()

    def _run(self, audio) -> None:
        try:
            self._track = find_phones(self.plan, audio)
        except BaseException as exc:        # noqa: BLE001 - handed to the caller's thread by result()
            self._error = exc

    def result(self):
        """The PhoneTrack (or None when no phones were wanted); re-raises the pass's error."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._track


def refuse_new_phones_for_corrected(source: str, args) -> None:
    """A SOURCE that already carries lip corrections is never corrected twice (its corrections are kept, made
    from its own phones): an explicit ``--alignment`` / ``--transcript`` could not be used, so it is refused
    rather than dropped while ``--phonemes`` wrote phones the corrections were not made from. With
    ``--no-closures`` (VOCA's exact motion) the flag's phones are used as usual.

    Raises
    ------
    InputError
        ``--alignment`` or ``--transcript`` given for such a source without ``--no-closures``.
    """
    if getattr(args, "no_closures", False):
        return
    given = [f for f, v in (("--alignment", getattr(args, "alignment", None)),
                            ("--transcript", getattr(args, "transcript", None))) if v is not None]
    if given:
        raise InputError(f"'{source}' already carries lip corrections made from its own phones, and a source is "
                         f"never corrected twice: {given[0]} would not be used. Leave it out to keep them, or add "
                         "--no-closures for VOCA's exact motion with these phones stored.")


def articulate(anim, plan: Plan, track):
    """``anim`` with the correction keys of ``track`` when the plan wants closures, else ``anim`` itself.

    A source that already carries corrections is returned as it is (never corrected twice).
    """
    if not plan.closures or track is None or anim.corrections is not None:
        return anim
    from ..core.articulation import add_corrections
    return add_corrections(anim, track)


def warn(lines, stream=None) -> None:
    """Each line as ``warning: ...`` (stderr by default)."""
    for line in lines:
        print(f"warning: {_one_line(line)}", file=stream or sys.stderr)


def write_phonemes(track, path: Optional[str], audio: Optional[str] = None) -> None:
    """The phone track to ``path`` (its format from the extension), when asked for; with the ``audio`` file
    the TextGrid spans the whole recording (its xmax) and Rhubarb's cues run to its end, as aligners write them."""
    if path is not None and track is not None:
        from ..core.phonemes import write_alignment
        write_alignment(track, path, audio_duration(audio) if audio else None)


def describe(plan: Plan, track, anim=None) -> str:
    """One line for the run's report: the phones' source and count, closures on/off."""
    if track is None:
        return "no lip closures" if not plan.closures else "no phones"
    where = f", {plan.origin}" if plan.origin and track == plan.track else ""
    text = f"{len(track.phones)} phones ({track.label}{where})"
    if anim is not None and anim.corrections is not None:
        return text + ", lip closures on"
    return text + (", lip closures off" if not plan.closures else "")
