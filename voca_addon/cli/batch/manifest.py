"""The run manifest of ``python -m voca_addon batch``: what a folder's outputs were made for.

A clip counts as done for ``--resume`` when its output files exist; nothing in those files says which
character (or the FLAME head), formats, frame rate or models made them. So every run writes
``DIR/batch_manifest.json`` before any clip: the settings that decide the outputs' content —

* ``formats`` and ``fps``; ``style``, the default speaking style of clips without their own;
* ``models``: VOCA's and DeepSpeech's identity as the model cache keys them (the first 16 hex digits of
  the files' SHA-256, from the cache's stat index when they are unchanged, else hashed) and the
  template's SHA-256;
* ``emotion_source``: its path and SHA-256 (or null);
* ``character``: null for the FLAME head, else the target mesh (absolute path + SHA-256), the landmarks
  (``"auto"`` or path + SHA-256) and the ``--target-keys`` folder (absolute path, each OBJ's name and
  SHA-256) or null;
* ``articulation``: ``closures`` (true unless ``--no-closures``) and ``transcripts``, each clip's phone
  source: ``"detected"``, ``{"transcript": file + SHA-256}`` (a ``.txt``: the CSV's, or ``AUDIO.txt`` beside
  the audio), ``{"transcript_text": SHA-256 of the CSV's text}`` or ``{"alignment": file + SHA-256}``.
  A resume compares the transcripts of the clips whose outputs it keeps (a clip added to the CSV, or one
  that failed or was left unfinished and is made again, is no conflict: its phones may have been fixed).

``--resume`` compares the folder's manifest with the run's and refuses (InputError: exit 2, nothing
written) when they differ, or when the folder holds outputs of these clips but no manifest (what they
were made for is unknown).

Contract: stdlib (+ :mod:`voca_addon.core.models.modelfiles`, imported when a manifest is computed).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
from typing import Optional

from ...core.errors import InputError

MANIFEST = "batch_manifest.json"
VERSION = 1


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file(path) -> dict:
    return {"path": os.path.abspath(path), "sha256": _sha256(path)}


def _character(args) -> Optional[dict]:
    if getattr(args, "target", None) is None:
        return None
    from ...core.character.retarget import is_auto
    keys = None
    if args.target_keys:
        folder = os.path.abspath(args.target_keys)
        files = sorted(glob.glob(os.path.join(folder, "*.obj")) + glob.glob(os.path.join(folder, "*.OBJ")))
        keys = {"path": folder, "files": {os.path.basename(p): _sha256(p) for p in files}}
    return {"target": _file(args.target),
            "landmarks": "auto" if is_auto(args.landmarks) else _file(args.landmarks),
            "target_keys": keys}


def _phone_source(clip) -> object:
    """Where one clip's phones come from (see the module docstring)."""
    if clip.alignment:
        return {"alignment": _file(clip.alignment) if os.path.isfile(clip.alignment) else clip.alignment}
    if clip.transcript and clip.transcript.lower().endswith(".txt"):
        return {"transcript": _file(clip.transcript) if os.path.isfile(clip.transcript) else clip.transcript}
    if clip.transcript:
        return {"transcript_text": hashlib.sha256(" ".join(clip.transcript.split()).encode()).hexdigest()}
    beside = os.path.splitext(clip.audio)[0] + ".txt"
    return {"transcript": _file(beside)} if os.path.isfile(beside) else "detected"


def _articulation(args, clips) -> dict:
    return {"closures": not getattr(args, "no_closures", False),
            "transcripts": {c.name: _phone_source(c) for c in clips or ()}}


def made_for(args, formats, style, clips=None) -> dict:
    """The settings of ``args`` that decide the outputs' content (see the module docstring)."""
    from ...core.models import modelfiles
    cache = os.path.abspath(args.cache) if args.cache else None
    voca = modelfiles.resolve_voca(args.voca)
    voca_files = [voca.with_name(voca.name + s) for s in (".index", ".data-00000-of-00001")]
    models = {"voca": modelfiles.files_identity("voca", voca_files, cache),
              "deepspeech": modelfiles.files_identity("deepspeech", [modelfiles.resolve_deepspeech(args.deepspeech)],
                                                      cache),
              "template": _sha256(modelfiles.resolve_template(args.template))}
    return {"formats": list(formats), "fps": float(args.fps),
            "style": {str(k): float(v) for k, v in sorted(style.items())} if isinstance(style, dict) else style,
            "models": models,
            "emotion_source": _file(args.emotion_source) if args.emotion_source else None,
            "character": _character(args),
            "articulation": _articulation(args, clips)}


def _describe(key: str, value) -> str:
    if key == "character":
        if value is None:
            return "the FLAME head (no --target)"
        marks = value["landmarks"]
        keys = value["target_keys"]
        own = (f"own keys from {keys['path']} ({len(keys['files'])} OBJs)" if keys
               else "transferred keys, no --target-keys")
        return (f"the character {value['target']['path']} (landmarks "
                f"{'auto' if marks == 'auto' else marks['path']}, {own})")
    if key == "formats":
        return "formats " + ",".join(value)
    if key == "fps":
        return f"{value:g} fps"
    if key == "style":
        return f"style {value if not isinstance(value, dict) else ','.join(f'{k}:{v:g}' for k, v in value.items())}"
    if key == "models":
        return "models " + ", ".join(f"{k} {v[:16]}" for k, v in value.items())
    if key == "articulation":
        if not isinstance(value, dict):
            return "no lip closures (made before they existed)"
        sources = value.get("transcripts", {})
        return (f"lip closures {'on' if value.get('closures') else 'off'}, phones of "
                + ", ".join(f"{k}: {_source_text(v)}" for k, v in sorted(sources.items())))
    if key == "emotion_source":
        return f"emotion source {value['path']}" if value else "no --emotion-source"
    return f"{key} {value}"


def _source_text(value) -> str:
    if not isinstance(value, dict):
        return str(value)
    kind, what = next(iter(value.items()))
    return f"{kind} {what['path'] if isinstance(what, dict) else (what[:12] if kind.endswith('text') else what)}"


def _common_clips(old: dict, new: dict, kept=None) -> tuple:
    """``old`` and ``new`` with their per-clip transcript sources restricted to the clips both have (and, when
    ``kept`` is given, to those clips: the ones whose outputs the resume keeps)."""
    a, b = old.get("articulation"), new.get("articulation")
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return old, new
    ta, tb = a.get("transcripts", {}), b.get("transcripts", {})
    both = set(ta) & set(tb) & (set(kept) if kept is not None else set(tb))
    keep = lambda t: {k: v for k, v in t.items() if k in both}          # noqa: E731
    return ({**old, "articulation": {**a, "transcripts": keep(ta)}},
            {**new, "articulation": {**b, "transcripts": keep(tb)}})


def _articulation_differences(old: dict, new: dict) -> str:
    if old.get("closures") != new.get("closures"):
        on = lambda v: "on" if v else "off"                                  # noqa: E731
        return f"lip closures {on(old.get('closures'))}, not {on(new.get('closures'))}"
    ta, tb = old.get("transcripts", {}), new.get("transcripts", {})
    parts = []
    for k in sorted(tb):
        if ta.get(k) != tb.get(k):
            was, now = _source_text(ta.get(k)), _source_text(tb.get(k))
            parts.append(f"clip {k}'s phones from {was}" + (" (other file contents)" if was == now else "")
                         + f", not {now}")
    return "; ".join(parts)


def differences(old: dict, new: dict) -> str:
    """'X, not Y' for each setting that differs (old: the folder's, new: this run's)."""
    parts = []
    for key in new:
        if key == "articulation" and isinstance(old.get(key), dict) and old.get(key) != new[key]:
            parts.append(_articulation_differences(old[key], new[key]))
        elif old.get(key) != new[key]:
            was, now = _describe(key, old.get(key)), _describe(key, new[key])
            if was == now:
                was += " (other file contents)"
            parts.append(f"{was}, not {now}")
    return "; ".join(parts)


def check_resume(out_dir: str, new: dict, any_output: bool, kept=None) -> None:
    """InputError when the outputs in ``out_dir`` were made for other settings than ``new``; ``kept``: the
    clips whose outputs the resume keeps (their phone sources must not have changed; None: every clip)."""
    path = os.path.join(out_dir, MANIFEST)
    hint = "; use another --out, or --overwrite instead of --resume (which writes every clip again)"
    try:
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    except FileNotFoundError:
        if any_output:
            raise InputError(f"the outputs in {out_dir} have no {MANIFEST} (written by an older version, or "
                             f"not by batch), so what they were made for is unknown{hint}") from None
        return
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} ({exc}){hint}") from None
    made = old.get("made_for") if isinstance(old, dict) and old.get("version") == VERSION else None
    if isinstance(made, dict):
        made, new = _common_clips(made, new, kept)
    if made != new:
        what = differences(made, new) if isinstance(made, dict) else f"a manifest of another version ({path})"
        raise InputError(f"the outputs in {out_dir} were made for {what}{hint}")


def write(out_dir: str, new: dict) -> str:
    """``DIR/batch_manifest.json`` (through :func:`voca_addon.core.outputs.write_exact`); returns its path."""
    from pathlib import Path
    from ...core.outputs import write_exact
    path = os.path.join(out_dir, MANIFEST)

    def dump(temp):
        with open(temp, "w", encoding="utf-8") as f:
            json.dump({"version": VERSION, "made_for": new}, f, indent=1)
    write_exact(Path(path), dump)
    return path
