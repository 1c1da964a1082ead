"""``python -m voca_addon phonemes AUDIO [--transcript TEXT|FILE.txt | --transcript-file F.txt | --alignment FILE]
[--channel N|mix] --out OUT.json|.tsv|.TextGrid [--rhubarb]``: the phone track of one clip, for other tools
(``--rhubarb``: as Rhubarb Lip Sync's mouth cues, .tsv or .json, :func:`core.phonemes.files.rhubarb_cues`).

``--transcript`` reads like the other commands' (:func:`.articulation.read_transcript`: a value ending in
``.txt``, or naming an existing file, is read as a UTF-8 file); ``--transcript-file`` is always a file. An
alignment file (``.TextGrid`` / ``.json`` / ``.tsv``) given to either is refused: it belongs to ``--alignment``.

``--method`` chooses how phones are *detected*: without a transcript it is the whole pass; with one
(``--transcript``, ``--transcript-file`` or ``AUDIO.txt``) it is used only where the transcript does not match
the audio and those phones are detected instead; with ``--alignment`` nothing is detected, so a ``--method``
given there is not used and one warning says so. ``--channel`` chooses the channel the phones are found on (0
by default, as every command; a silent or missing one is refused); with ``--alignment`` it is not used either.
Detection and alignment are US English (PocketSphinx's model and dictionary): for another language give an
``--alignment`` file (e.g. Montreal Forced Aligner's TextGrid); a detected track says so where it is reported.

Without ``--transcript``/``--transcript-file``/``--alignment``, ``AUDIO.txt`` beside the audio is the
transcript when present (one line says so); otherwise the phones are detected from the audio alone.
``--alignment`` converts and checks a file the user has (TextGrid, Rhubarb TSV/JSON, our JSON/TSV) against
the audio's length. Warnings (unknown words, a transcript that does not match) are ``warning:`` lines;
the run still succeeds. Every refusal is one ``error:`` line, exit 2, nothing written.

Contract: stdlib at import (``--help`` stays instant); the core is imported when the command runs.
"""
from __future__ import annotations

import os
import sys

from . import common
from ..core.errors import InputError
from .articulation import PHONEME_FORMATS, PHONEME_SUFFIXES as SUFFIXES     # stdlib only at import


def add_parser(sub) -> None:
    """The ``phonemes`` sub-command on the CLI's sub-parsers."""
    p = sub.add_parser("phonemes", help="audio (+ transcript) → phone track (.json / .tsv / .TextGrid)")
    p.add_argument("audio", metavar="AUDIO")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--transcript", metavar="TEXT|FILE.txt", help="the words spoken, or a .txt file holding "
                   "them (forced alignment; US English). Default: AUDIO.txt beside the audio when there is one")
    g.add_argument("--transcript-file", metavar="F.txt", help="a UTF-8 text file with the words spoken")
    g.add_argument("--alignment", metavar="FILE", help="read the phones from a Praat .TextGrid, a Rhubarb "
                   "Lip Sync .tsv/.json or this add-on's .json/.tsv instead of detecting them")
    p.add_argument("--method", choices=("words", "phones"), help="how phones are detected (PocketSphinx's "
                   "US-English model: for another language give --alignment): 'words' (recogniser + alignment, "
                   "default) or 'phones' (the phone recogniser alone, faster, fewer bilabials found). Without a "
                   "transcript it is the whole pass; with one, only where the transcript does not match the "
                   "audio; with --alignment it is not used")
    p.add_argument("--channel", type=common.parse_channel, default=0, metavar="N|mix", help="the audio channel "
                   "the phones are found on: 0 (default), 1, ... or 'mix' (mean of all); with --alignment it is "
                   "not used")
    p.add_argument("--out", required=True, help=f"output {PHONEME_FORMATS} (by extension)")
    p.add_argument("--rhubarb", action="store_true", help="write Rhubarb Lip Sync's mouth cues (A–H, X: "
                   "P/B/M → A, F/V → G, …) instead of phones, as its .tsv or .json, for tools that read them")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(run=run)


def run(args) -> None:
    """Run the command (errors are raised as InputError / VocaError; the CLI prints them)."""
    from ..core import outputs
    from ..core.phonemes import phones_for_audio, read_alignment, transcript_for, write_alignment
    from ..core.phonemes.stage import DEFAULT_METHOD, transcript_words
    from ..core.speech import audio as audio_mod
    from .articulation import read_text_file, read_transcript, refuse_alignment_as_transcript
    if not str(args.out).lower().endswith(SUFFIXES):
        raise InputError(f"--out '{args.out}' must end in {PHONEME_FORMATS} (the format is chosen by the "
                         "extension).")
    out = outputs.check_output(args.out, "--out", SUFFIXES, args.overwrite)
    outputs.check_distinct({"--out": out}, {"AUDIO": args.audio, "--alignment": args.alignment,
                                            "--transcript-file": args.transcript_file})
    if args.rhubarb:
        from ..core.phonemes.files import check_rhubarb_path
        check_rhubarb_path(out)
    audio_mod.check_audio_path(args.audio)
    transcript = args.transcript
    if transcript is not None:                  # text, or a .txt file as the other commands read it
        transcript, _ = read_transcript(transcript)
    if args.transcript_file is not None:
        refuse_alignment_as_transcript(args.transcript_file, "--transcript-file")
        transcript = read_text_file(args.transcript_file, "--transcript-file")
    if transcript is not None:
        transcript_words(transcript)                 # empty: refused before the audio is decoded
    clip = audio_mod.load_audio(args.audio)
    if args.alignment is not None:
        for flag, value, default in (("--method", args.method, None), ("--channel", args.channel, 0)):
            if value != default:
                print(f"warning: {flag} {value} is not used: with --alignment the phones are read from the "
                      "file, not detected", file=sys.stderr)
        track = read_alignment(args.alignment, clip.duration_s)
    else:
        clip = audio_mod.select_channel(clip, args.channel)     # missing or silent: refused, nothing written
        if transcript is None:
            transcript = transcript_for(args.audio)
            if transcript is not None:
                print(f"transcript: {os.path.splitext(args.audio)[0]}.txt", file=sys.stderr)
        track = phones_for_audio(clip, transcript, method=args.method or DEFAULT_METHOD)
    for line in track.warnings:
        print(f"warning: {line}", file=sys.stderr)
    write_alignment(track, out, clip.duration_s, rhubarb=args.rhubarb)
    what = "Rhubarb mouth cues of " if args.rhubarb else ""
    print(f"wrote {out}: {what}{len(track.phones)} phones ({track.label})")
