"""The worker side of ``python -m voca_addon batch``: one group of clips → their output files.

:func:`run_group` is what every executor runs — the batch process itself, a local worker process
(``--workers N``) or a Dask worker (``--scheduler ADDRESS``). It takes a picklable :class:`GroupTask`,
reads the models once per process (kept in memory while the files are unchanged), animates the group with
the shared DeepSpeech recurrence (:func:`voca_addon.core.batch.animate_group`) and writes each clip's
outputs named after it. A clip that fails (a user error: unreadable audio, a bad style, an output Blender
refuses) is reported in its :class:`ClipResult` (one line) and leaves none of the files it wrote; the others go
on.
Ctrl-C stops the group, whatever it interrupts: SIGINT is recorded as it arrives, so an
export that failed after it (Blender's glTF operator catches the ``KeyboardInterrupt`` and reports an
export error) is the interrupt, not the clip's failure (:mod:`.processes`, which also prepares a
``--workers`` process).

Outputs, each written under a temporary name and renamed into place when complete (so an existing
output is a complete one, which ``--resume`` relies on):

* ``NAME.npz`` — the CLI's ``infer`` file (vertices, weights, basis, bias, template, fps, names; the lip
  corrections kept apart from VOCA's exact weights and the phones: :mod:`voca_addon.core.animation.npzextras`);
* ``NAME.csv`` — one row per frame: ``frame, time_s`` and every shape key's weight (the correction keys'
  last);
* ``NAME.phonemes.EXT`` — the phone track (``--phonemes``);
* ``NAME.blend``, ``.mp4``, ``.glb``, ``.fbx``, ``.abc``, ``.usd`` — through Blender
  (:mod:`voca_addon.blender.exports.engines`), in the process that runs the group.

Emotion: a clip's emotion (from ``--emotion-source``) at ``strength`` is keyed 0 → strength → 0 over the
clip with 12-frame smoothstep ramps, as the Blender operator does. In ``.npz`` / ``.csv`` it is one more
shape (``emotion_<name>``, the emotion's delta) whose weight follows that curve; the Blender outputs get
the add-on's own emotion key.

Lip closures: each clip's phones (its alignment file, else its transcript aligned, else detection) are
found in a thread of the process that runs the group, beside the group's DeepSpeech; the corrections are
computed on VOCA's motion, as Animate from audio computes them (so every output of a clip holds the same
ones; its emotion is added on top), and kept as separate keys.

Contract: numpy and :mod:`voca_addon.core`; ``bpy`` only when a Blender format is asked for. Any process;
one group at a time per process.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from .. import articulation as articulation_cli
from . import character as batch_character, processes
from .inputs import BLENDER_FORMATS, ClipSpec
from .specs import ClipResult, GroupTask, output_paths
from ...core import batch as core_batch
from ...core.animation.shapekeys import ShapeKeyAnimation
from ...core.errors import InputError, VocaError
from ...core.character import arkit
from ...core.emotion import sources as emotion_sources, emotions
from ...core.flame import meshio
from ...core.models import modelfiles

EASE_FRAMES = 12            # frames of an emotion's rise and fall (the operator's default)
TRACEBACK = "Traceback (most recent call last):"
SILENT_HINT = "Choose another channel, channel='mix'"    # the core's advice, worded for its Python API
BATCH_CHANNEL_HINT = ("The batch reads channel 0 of every file: give this clip the speaking channel as a mono "
                      "file (e.g. ffmpeg -i IN -af 'pan=mono|c0=c1' OUT.wav for channel 1), or animate it alone "
                      "with 'animate AUDIO --channel N|mix'.")


# ---------------------------------------------------------------------------- models, once per process

_MODELS: Dict[tuple, tuple] = {}
_LOCK = threading.Lock()


def load_models(task: GroupTask):
    """(DeepSpeech, VOCA, template mesh) for ``task``; read once per process and reused while unchanged."""
    files = [task.deepspeech, task.voca + ".index", task.voca + ".data-00000-of-00001", task.template]
    stamp = tuple((p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in files)
    with _LOCK:
        if stamp not in _MODELS:
            _MODELS.clear()
            cache = task.cache and os.fspath(task.cache)
            _MODELS[stamp] = (modelfiles.load_deepspeech(task.deepspeech, cache),
                              modelfiles.load_voca(task.voca, cache), meshio.read_mesh(task.template))
        return _MODELS[stamp]


# ---------------------------------------------------------------------------- core formats

def with_emotion(anim: ShapeKeyAnimation, emotion: emotions.Emotion, strength: float) -> ShapeKeyAnimation:
    """``anim`` plus the emotion as one more shape, keyed 0 → strength → 0 over the clip (smoothstep ramps).

    Returns the animation unchanged for a one-frame clip (an emotion needs two frames).
    """
    if anim.num_frames < 2:
        return anim
    keys, values = emotions.ease_curve(0.0, anim.num_frames - 1.0, EASE_FRAMES, strength)
    weight = np.interp(np.arange(anim.num_frames), keys, values).astype(np.float32)
    basis = np.concatenate([anim.basis, np.asarray(emotion.delta, np.float32)[None]])
    weights = np.concatenate([anim.weights, weight[:, None]], axis=1)
    return ShapeKeyAnimation(basis, anim.bias, weights, anim.fps, anim.template,
                             anim.names + (f"emotion_{emotion.name}",), anim.corrections)


def write_npz(anim: ShapeKeyAnimation, path: str, solution=None, track=None) -> None:
    """The ``infer`` file (with the phones of ``track``); with a key solution also its ``key_weights`` and
    ``key_names``."""
    from ...core import engine, outputs

    def write(temp):
        engine.save_animation_npz(anim, temp, phones=track)
        if solution is not None:
            batch_character.add_key_weights(str(temp), solution)
    outputs.write_exact(Path(path), write)


def write_csv(anim: ShapeKeyAnimation, path: str) -> None:
    """One row per frame: frame (0-based), time in seconds, then the weight of every shape key."""
    from ...core import outputs
    c = anim.corrections
    frames = np.arange(anim.num_frames)
    table = np.column_stack([frames, frames / anim.fps, anim.weights] + ([c.weights] if c is not None else []))

    def write(temp):
        with open(temp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["frame", "time_s", *anim.names, *(c.names if c is not None else ())])
            out.writerows([[int(r[0]), f"{r[1]:.6f}", *(f"{v:.9g}" for v in r[2:])] for r in table])
    outputs.write_exact(Path(path), write)


# ---------------------------------------------------------------------------- one group

def _emotions(task: GroupTask, n_vertices: int) -> Dict[str, object]:
    """Each clip emotion's :class:`Emotion` (or the message why it cannot be loaded)."""
    names = sorted({c.emotion for c in task.clips if c.emotion})
    found: Dict[str, object] = {}
    for name in names:
        try:
            (emotion,) = emotion_sources.load_emotions(task.emotion_source, [name])
            emotions.validate([emotion], n_vertices)
            found[name] = emotion
        except VocaError as exc:
            found[name] = " ".join(str(exc).split())
    return found


def _stamp(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _write_outputs(task: GroupTask, spec: ClipSpec, anim: ShapeKeyAnimation, template, emotion,
                   phones=None) -> List[str]:
    """Every output of one clip; when one fails (or Ctrl-C), the ones written before it are removed: a failed
    clip leaves nothing (its summary row lists no outputs)."""
    paths = output_paths(task.out_dir, spec.name, task.formats)
    before = {p: _stamp(p) for p in paths}
    try:
        return _write_all(task, spec, anim, template, emotion, phones, paths)
    except BaseException:
        for p in paths:
            if _stamp(p) != before[p]:          # written (renamed into place) by this attempt
                with contextlib.suppress(OSError):
                    os.remove(p)
        raise


def _write_all(task: GroupTask, spec: ClipSpec, anim: ShapeKeyAnimation, template, emotion, phones,
               paths: List[str]) -> List[str]:
    plan, track = phones if phones is not None else (None, None)
    if plan is not None:             # closures on VOCA's motion, as Animate from audio makes them (every output
        anim = articulation_cli.articulate(anim, plan, track)    # the same); the emotion is added on top
    core_anim = with_emotion(anim, emotion, spec.strength) if emotion is not None else anim
    solution = None
    if task.character is not None:                       # every output on the character
        core_anim = batch_character.on_character(task.character, core_anim)
        solution = batch_character.solve_keys(task.character, core_anim)
    blender = [(fmt, p) for fmt, p in zip(task.formats, paths) if fmt in BLENDER_FORMATS]
    for fmt, path in zip(task.formats, paths):
        if fmt == "npz":
            write_npz(core_anim, path, solution, track)
        elif fmt.startswith("phonemes."):
            if track is None:                            # no PocketSphinx and no alignment file
                raise InputError("no phones to write for --phonemes: PocketSphinx is not available here; give "
                                 "the clip an alignment file (CSV column 'alignment')")
            articulation_cli.write_phonemes(track, path, spec.audio)
        elif fmt == "csv" and solution is not None:
            arkit.write_live_link_csv(path, solution.weights, solution.names, core_anim.fps)
        elif fmt == "csv":
            write_csv(core_anim, path)
    if not blender:
        processes.stop_if_interrupted()
        return paths
    from ...blender.exports.framewise import silenced   # needs bpy (checked before the batch started)
    with silenced(), processes.stderr_unless_interrupted():   # Blender's exporters print to stdout per file
        if task.character is not None:
            from ...blender.exports import character as character_exports
            character_exports.write_character_clip(core_anim, solution, task.character, spec.audio, dict(blender),
                                                   name=spec.name)
        else:
            from ...blender.exports import engines as exports
            exports.write_clip(anim, template, spec.audio, dict(blender), emotion=emotion,
                               strength=spec.strength, name=spec.name,
                               track=track if anim.corrections is not None else None)
    processes.stop_if_interrupted()       # an exporter that swallowed Ctrl-C: its file is not trusted (removed)
    return paths


def clip_plan(task: GroupTask, spec: ClipSpec):
    """The articulation plan of one clip (:func:`voca_addon.cli.articulation.plan`), or None when the batch
    wants neither closures nor phones. Raises InputError for the clip's bad transcript / alignment."""
    phonemes = next((f for f in task.formats if f.startswith("phonemes.")), None)
    if not task.closures and phonemes is None:
        return None
    transcript = spec.transcript if task.detect else None
    plan = articulation_cli.plan(spec.audio, closures=task.closures, transcript=transcript,
                                 alignment=spec.alignment, flag="the CSV's transcript", beside=task.detect)
    if plan.track is None and not task.detect:
        return None                                      # no PocketSphinx: the exact result (warned once)
    if phonemes is None:
        return plan
    return dataclasses.replace(plan, phonemes_out=os.path.join(task.out_dir, f"{spec.name}.{phonemes}"))


class _PhonePasses:
    """Every clip's phone pass, one after the other in one daemon thread (beside the group's DeepSpeech).

    :meth:`results`: {clip name: (plan, PhoneTrack) | None | error message}."""

    def __init__(self, task: GroupTask, clips):
        self._task, self._clips, self._found = task, list(clips), {}
        self._thread = threading.Thread(target=self._run, name="voca-phonemes", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for spec in self._clips:
            try:
                plan = clip_plan(self._task, spec)
                if plan is None:
                    self._found[spec.name] = None
                    continue
                self._found[spec.name] = (plan, articulation_cli.find_phones(plan, spec.audio))
            except Exception as exc:         # noqa: BLE001 - the clip fails, the others go on
                self._found[spec.name] = _failure(exc, spec)

    def results(self) -> dict:
        self._thread.join()
        return self._found


def one_line(text: str) -> str:
    """``text`` on one line; a Python traceback in it (Blender's operators report an exporter's exception
    with its traceback: *glTF export: Python: Traceback …*) reduced to its last line, the exception."""
    text = str(text)
    if TRACEBACK in text:
        head = text.split(TRACEBACK, 1)[0].rstrip()
        head = head[:-len("Python:")].rstrip() if head.endswith("Python:") else head
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln[:1].isspace()
                 and not ln.lower().startswith("location:") and TRACEBACK not in ln]
        text = f"{head} {lines[-1] if lines else ''}"
    return " ".join(text.split())


def batch_wording(message: str) -> str:
    """A clip's audio error as the batch user can act on it: a silent channel 0 (speech on another channel of
    a stereo file) says what to do with a batch, which has no channel setting, not the Python API's
    ``channel='mix'``."""
    if SILENT_HINT in message:
        return message.split(SILENT_HINT, 1)[0].rstrip() + " " + BATCH_CHANNEL_HINT
    return message


def _failure(exc: BaseException, spec: ClipSpec) -> str:
    """A clip's error message: a user error's own text (one line); for a bug, one line naming its log file."""
    if isinstance(exc, (VocaError, OSError)):
        return one_line(str(exc))
    from ...core import errorlog
    return errorlog.one_line(exc, errorlog.write_error_log(exc, f"batch clip '{spec.name}' ({spec.audio})"))


class GroupInterrupted(KeyboardInterrupt):
    """Ctrl-C inside a group: the :class:`ClipResult` of the clips it had finished (their files are whole)."""

    def __init__(self, results):
        super().__init__(results)       # (the args: so that it pickles back from a worker process)
        self.results = list(results)


def run_group(task: GroupTask, progress=None) -> List[ClipResult]:
    """Animate one group of clips and write their outputs; one :class:`ClipResult` per clip, in order.

    ``progress(fraction)``: called during the group's shared recurrence (in-process runs only). Ctrl-C raises
    :class:`GroupInterrupted` with the clips finished before it."""
    with processes.running_group():
        processes.stop_if_interrupted()
        results: List[ClipResult] = []
        try:
            return _run_group(task, progress, results)
        except KeyboardInterrupt:
            raise GroupInterrupted(results) from None


def _run_group(task: GroupTask, progress, results: List[ClipResult]) -> List[ClipResult]:
    started = time.perf_counter()
    ds_model, voca_model, template = load_models(task)
    usable = [c for c in task.clips if c.problem is None]
    phones = _PhonePasses(task, usable)                  # a thread beside the group's DeepSpeech
    requests = [core_batch.ClipRequest(c.name, c.audio, c.condition) for c in usable]
    outcomes = dict(zip((c.name for c in usable),
                        core_batch.animate_group(requests, ds_model, voca_model, template.vertices, task.fps,
                                                 progress)))
    found = phones.results()
    feelings = _emotions(task, len(template.vertices)) if task.emotion_source else {}
    shared = (time.perf_counter() - started) / max(1, len(task.clips))   # the group's compute, per clip
    for spec in task.clips:
        processes.stop_if_interrupted()
        t0 = time.perf_counter()
        result = ClipResult(spec.name, spec.audio, "failed")
        outcome = outcomes.get(spec.name)
        emotion = feelings.get(spec.emotion) if spec.emotion else None
        if spec.problem:
            result.error = spec.problem
        elif not outcome.ok:
            result.error = batch_wording(outcome.error)
        elif isinstance(emotion, str):
            result.error = emotion
        elif isinstance(found.get(spec.name), str):
            result.error = found[spec.name]
        else:
            phones = found.get(spec.name)
            if phones is not None and phones[1] is not None:     # what the user reads of the phone pass
                result.phones = len(phones[1].phones)
                result.source, result.warnings = phones[1].source, list(phones[1].warnings)
            try:
                result.outputs = _write_outputs(task, spec, outcome.animation, template, emotion, phones)
                result.outcome, result.frames = "ok", outcome.animation.num_frames
            except Exception as exc:            # noqa: BLE001 — one clip's failure never stops the others
                if processes.interrupted():     # an exporter that caught the KeyboardInterrupt: Ctrl-C it was
                    raise KeyboardInterrupt from None
                result.error = _failure(exc, spec)
        result.seconds = shared + time.perf_counter() - t0
        results.append(result)
    return results


# ---------------------------------------------------------------------------- the dialogue library

def read_speech_animation(path: str) -> ShapeKeyAnimation:
    """A clip's speech animation back from its ``.npz`` (an emotion shape, if any, left out; its lip
    corrections, if any, kept apart: :mod:`voca_addon.core.animation.npzextras`)."""
    from ...core.animation import npzextras, sources
    with sources.open_npz(path) as z:          # a damaged clip file: InputError naming it
        names = tuple(str(n) for n in z["names"])
        keep = [k for k, n in enumerate(names) if not n.startswith("emotion_")]
        anim = ShapeKeyAnimation(z["basis"][keep], z["bias"], z["weights"][:, keep], float(z["fps"]),
                                 z["template"], tuple(names[k] for k in keep))
        return anim.with_corrections(npzextras.read_corrections(z, anim.num_frames, path))


def read_key_weights(path: str):
    """(weights float32 [F, J], names) of the rig's keys from a clip's ``.npz`` (``--target-keys``)."""
    from ...core.animation import sources
    with sources.open_npz(path) as z:          # a damaged clip file: InputError naming it
        if batch_character.KEY_WEIGHTS not in z.files or batch_character.KEY_NAMES not in z.files:
            raise InputError(f"'{path}' holds no rig key weights (it was made without --target-keys); "
                             "run the batch again with --overwrite instead of --resume, or into another --out")
        return z[batch_character.KEY_WEIGHTS], tuple(str(n) for n in z[batch_character.KEY_NAMES])


def write_library(path: str, clips: List[ClipSpec], out_dir: str, template_path: str, character=None) -> int:
    """The dialogue library ``path`` (.blend) from the ``.npz`` outputs of ``clips``; returns the clip count.

    With a ``character`` (:class:`~voca_addon.cli.batch.character.BatchCharacter`) every clip goes onto it: its
    transferred keys, or with its own keys those keys' solved weights."""
    from ...blender.exports import engines as exports  # needs bpy (checked before the batch started)
    from ...blender.exports.framewise import silenced
    with silenced():                # Blender's own lines on stdout (its save report)
        return _write_library(path, clips, out_dir, template_path, character, exports)


def _write_library(path, clips, out_dir, template_path, character, exports) -> int:
    npz = [os.path.join(out_dir, f"{c.name}.npz") for c in clips]
    # the library holds each clip's exact speech: a clip's correction keys are fields learned from its own
    # motion, not one key the clips could share (they stay in the clip's own files)
    entries = [exports.LibraryClip(c.name, read_speech_animation(p).exact(), c.audio) for c, p in zip(clips, npz)]
    if character is None:
        exports.build_library(entries, meshio.read_mesh(template_path), path)
    elif character.keys is None:
        exports.build_library(entries, character.character.target, path, head_name=character.name)
    else:
        from ...blender.exports import character as character_exports
        curves = [read_key_weights(p) for p in npz]
        character_exports.build_rig_library(entries, curves, character, path)
    return len(entries)
