"""``python -m voca_addon batch INPUT --out DIR``: many clips in one run, the models read once.

INPUT is a folder of audio files (searched recursively; a clip's name is its path below the folder without
the suffix, ``/`` → ``-``) or a CSV with a header: ``audio`` (required; relative paths are relative to the
CSV's folder) and optionally ``style`` (``3`` or ``1:0.5,4:0.5``), ``emotion``, ``strength``, ``name``,
``transcript`` and ``alignment`` (:mod:`voca_addon.cli.batch.inputs`).
Clips are animated in groups of ``--batch-size`` whose DeepSpeech recurrence runs together (one read of
the weights per step serves the group: :mod:`voca_addon.core.speech.deepspeech_batch`); each clip's
outputs are named after it (:mod:`voca_addon.cli.batch.worker`).

Executors: this process (default); ``--workers N`` local processes; ``--scheduler ADDRESS`` an existing
Dask distributed cluster (``dask scheduler`` / ``dask worker ADDRESS --nthreads 1 --nworkers N``: one
group per process, as a group's one-thread BLAS limit is process-wide; Dask is in the project's dev
environment, the extension never needs it), whose workers read the models from the same paths (a shared
folder).

Outcome. A clip that fails is reported (progress line and summary, one line) and leaves none of its
outputs; the others go on. Exit status: 0 every clip ok (or skipped by ``--resume``),
:data:`EXIT_SOME_FAILED` when some clip failed, 130 on Ctrl-C (whatever it interrupts, an exporter that
catches it included: :mod:`voca_addon.cli.batch.processes`; the summary is written, the clips not done
``interrupted``), 2 when the batch as a whole is refused (no clips, a missing model file, an unknown
format, duplicate names, files in DIR it would replace without ``--overwrite`` or a ``--resume`` of the
batch that made them) before anything is written. ``--resume`` skips clips whose outputs all exist
(outputs are written under a temporary name and renamed when complete, so an existing file is a complete
one), after checking that they were made for this run's settings (``DIR/batch_manifest.json``,
:mod:`voca_addon.cli.batch.manifest`: character, formats, fps, style, models, closures on/off and each
clip's transcript source; refused with exit 2 when they differ).

Lip closures (issue 18) are on unless ``--no-closures``: each clip's phones come from its ``alignment``
file, else its transcript (CSV ``transcript``, else ``AUDIO.txt`` beside the audio) aligned by PocketSphinx,
else detection; the phone pass runs inside the process that animates the group (a ``--workers`` / Dask
worker), in a thread beside the group's DeepSpeech. ``--phonemes EXT`` also writes ``NAME.phonemes.EXT``.
Without PocketSphinx, one warning line and clips without an alignment file get the exact VOCA result. The summary,
``DIR/batch_summary.json`` and ``.csv``, lists every clip: outcome, seconds, frames, outputs, error, its
phones' count and source and the phone pass's warnings (also printed under the clip's progress line); it is
rewritten after every group, so an interrupted batch leaves one too.

Contract: importing this module imports only the stdlib (``--help`` stays instant); running a batch uses
numpy + :mod:`voca_addon.core` in this process (``bpy`` only through Blender formats, Dask only
with ``--scheduler``). Errors that refuse the whole batch raise :class:`~voca_addon.core.errors.VocaError`.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import signal
import sys
import time
from typing import Iterable, List, Sequence

from .. import articulation, common
from .inputs import BLENDER_FORMATS, FORMATS, ClipSpec, parse_formats, read_input
from .specs import ClipResult, GroupTask, output_paths, phonemes_format
from ...core.errors import InputError

EXIT_SOME_FAILED = 4            # some clips failed, the others were written
SUMMARY = "batch_summary"
OUTCOMES = ("ok", "failed", "skipped", "interrupted")    # a clip's outcome in the summary
SHOWN = 3                       # existing files named in a refusal
DEFAULT_BATCH = 8               # clips per shared recurrence
DASK_CONNECT_S = 15             # seconds to wait for a Dask scheduler
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def add_parser(sub) -> None:
    """The ``batch`` subcommand on the command line's sub-parsers."""
    b = sub.add_parser("batch", help="many audio files → one output set per clip (models read once)")
    b.add_argument("input", metavar="INPUT", help="folder of audio files (AUDIO.txt beside one: its transcript), "
                   "or a CSV whose header names its columns: audio (required), style, emotion, strength, name, "
                   "transcript, alignment")
    b.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    b.add_argument("--format", default="npz", help=f"comma-separated, of {','.join(FORMATS)} (default npz)")
    again = b.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="carry on a batch into DIR: skip clips whose "
                       "outputs all exist (made for the same settings)")
    again.add_argument("--overwrite", action="store_true", help="replace files in DIR this batch writes "
                       "(NAME.FMT, batch_summary.*, batch_manifest.json, --library); without it they are refused")
    b.add_argument("--workers", type=int, default=1, metavar="N", help="local worker processes (default 1)")
    b.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask distributed cluster, e.g. "
                   "tcp://10.0.0.5:8786 (models read from the same paths on every worker)")
    b.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, metavar="B",
                   help=f"clips whose recurrence runs together (default {DEFAULT_BATCH})")
    b.add_argument("--voca", metavar="PREFIX", help="VOCA checkpoint prefix or folder")
    b.add_argument("--deepspeech", metavar="PB", help="DeepSpeech v0.1.0 output_graph.pb")
    b.add_argument("--template", metavar="MESH", help="FLAME template .ply/.obj")
    b.add_argument("--cache", metavar="DIR", help="model cache folder (default ~/.cache/voca_addon)")
    b.add_argument("--fps", type=float, default=60.0, help="output frame rate (default 60)")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--condition", type=int, default=3, help="speaking style of clips without one (default 3)")
    g.add_argument("--style", help="style blend of clips without one, e.g. 1:0.5,4:0.5")
    b.add_argument("--emotion-source", metavar="PATH", help="where the CSV's emotions come from (FLAME "
                   "model .pkl, delta .npy/.npz, preset JSON)")
    b.add_argument("--library", metavar="FILE.blend", help="also the dialogue library: every clip on one "
                   "head, an action per clip, NLA track, markers (needs Blender; implies npz)")
    c = b.add_argument_group("character", "every clip onto one character instead of the FLAME head "
                             "(fitted once, as the retarget command does)")
    c.add_argument("--target", metavar="MESH", help="the character's head, .obj or .ply")
    c.add_argument("--landmarks", metavar="PAIRS", help="'flame_vertex target_vertex' lines (with --target), "
                   "or 'auto' for an automatic first guess")
    c.add_argument("--target-keys", metavar="FOLDER", help="the rig's own keys as OBJs: drive them (csv = "
                   "Live Link Face CSV per clip)")
    articulation.add_args(b, batch=True)     # --no-closures, --phonemes EXT (stdlib)
    b.set_defaults(run=run)


# ---------------------------------------------------------------------------- progress and summary

class Progress:
    """A text progress bar with an ETA on ``stream``, one line per finished clip."""

    def __init__(self, total: int, stream=None, folder: bool = False):
        self.total, self.done, self.failed = total, 0, 0
        self.folder = folder            # INPUT is a folder: no CSV column to point at
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.told_detected = False

    def clip(self, result: ClipResult) -> None:
        """The clip's line (outcome, seconds, its phones' count and source), then its phone pass's warnings,
        and the first time a clip's phones were detected, one line saying by what (as ``animate`` says)."""
        self.done += 1
        self.failed += result.outcome == "failed"
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        bar = "#" * round(20 * self.done / self.total)
        what = result.outcome if result.outcome != "failed" else f"FAILED: {result.error}"
        phones = f"; {result.phones_text}" if result.phones_text else ""
        print(f"[{bar:<20}] {self.done}/{self.total} ETA {eta:5.0f} s  {result.name}: {what} "
              f"({result.seconds:.1f} s{phones})", file=self.stream, flush=True)
        for line in result.warnings:
            print(f"warning: {result.name}: {' '.join(line.split())}", file=self.stream, flush=True)
        if result.source == "detected" and not self.told_detected:
            from ...core.phonemes.track import DETECTED_BY
            self.told_detected = True
            how = ("list the clips in a CSV INPUT with an 'alignment' column (a TextGrid, Rhubarb or JSON phone "
                   "file per clip)" if self.folder else
                   "give the clip an alignment file in the CSV's 'alignment' column")
            print(f"  ({DETECTED_BY}; for another language {how})", file=self.stream, flush=True)


def write_summary(out_dir: str, results: Sequence[ClipResult]) -> List[str]:
    """``batch_summary.json`` and ``.csv`` in ``out_dir`` (written atomically); returns their paths."""
    rows = [dict(name=r.name, audio=r.audio, outcome=r.outcome, seconds=round(r.seconds, 3), frames=r.frames,
                 outputs=r.outputs, error=r.error, phones=r.phones_text, warnings=r.warnings)
            for r in results]
    counts = {k: sum(r.outcome == k for r in results) for k in OUTCOMES}
    paths = [os.path.join(out_dir, SUMMARY + ext) for ext in (".json", ".csv")]
    from pathlib import Path
    from ...core import outputs

    def write_json(temp):
        with open(temp, "w") as f:
            json.dump(dict(clips=len(rows), **counts, results=rows), f, indent=1)

    def write_csv(temp):
        with open(temp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["name"])
            w.writeheader()
            w.writerows([{**r, "outputs": ";".join(r["outputs"]), "warnings": " | ".join(r["warnings"])}
                         for r in rows])

    with outputs.Staged([Path(p) for p in paths]) as staged:      # both or neither
        write_json(staged.temp(Path(paths[0])))
        write_csv(staged.temp(Path(paths[1])))
        staged.commit()
    return paths


# ---------------------------------------------------------------------------- executors

def _local(tasks: Sequence[GroupTask]) -> Iterable[List[ClipResult]]:
    """The groups in this process, with a line per tenth of each group's speech network."""
    from .worker import run_group
    for index, task in enumerate(tasks, start=1):
        shown = [0]

        def tenths(fraction: float, index=index, shown=shown) -> None:
            if int(10 * fraction) > shown[0]:
                shown[0] = int(10 * fraction)
                print(f"  group {index}/{len(tasks)} ({len(task.clips)} clips): speech network "
                      f"{10 * shown[0]}%", file=sys.stderr, flush=True)
        yield run_group(task, tenths)


def _processes(tasks: Sequence[GroupTask], workers: int) -> Iterable[List[ClipResult]]:
    """The groups in ``workers`` spawned processes, each with its share of the cores for BLAS (unless the
    user set the thread variables): N processes × all cores' threads would only fight over the cores."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from .processes import init_process
    from .worker import load_models, run_group
    load_models(tasks[0])       # here first: its warning once (the workers keep quiet), the cache made once
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    saved = {k: os.environ.get(k) for k in BLAS_THREADS}
    os.environ.update({k: threads for k, v in saved.items() if v is None})   # read by the spawned workers
    try:
        blender = any(f in BLENDER_FORMATS for f in tasks[0].formats)
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_process, initargs=(blender,))
        try:
            for future in as_completed([pool.submit(run_group, t) for t in tasks]):
                yield future.result()
        except BaseException:   # Ctrl-C (or a group's error): no group starts, the running ones are stopped
            for child in multiprocessing.active_children():
                with contextlib.suppress(OSError):
                    os.kill(child.pid, signal.SIGINT)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


def dask_client(address: str):
    """A connected ``dask.distributed.Client``; InputError when Dask is missing or the scheduler unreachable."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise InputError("--scheduler needs Dask: pip install 'dask[distributed]' (in the environment that "
                         "runs the batch and on every worker)") from None
    try:
        client = Client(address, timeout=DASK_CONNECT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at '{address}' ({' '.join(str(exc).split())}); "
                         "start it with 'dask scheduler' and check the address") from None
    try:
        _check_cluster_imports(client, address)
    except BaseException:
        client.close()
        raise
    return client


def _check_cluster_imports(client, address: str) -> None:
    """Refuse a cluster whose scheduler or workers cannot import this package: the scheduler unpickles the
    task graph and the workers run it (else: "internal error … deserialization of the task graph")."""
    import importlib.util
    package = __package__.split(".")[0]          # the top-level package: what a task's pickle names first
    missing = []
    if client.run_on_scheduler(importlib.util.find_spec, package) is None:
        missing.append("the scheduler")
    workers = client.run(importlib.util.find_spec, package)
    lacking = sorted(name for name, spec in workers.items() if spec is None)
    if lacking:
        missing.append(f"{len(lacking)} of {len(workers)} workers ({', '.join(lacking[:3])}"
                       f"{', …' if len(lacking) > 3 else ''})")
    if missing:
        root = os.path.abspath(__file__).rsplit(os.sep, 4)[0]     # the folder that holds the package
        raise InputError(f"the Dask cluster at '{address}': {' and '.join(missing)} cannot import {package} "
                         f"(the scheduler unpickles the batch's tasks, the workers run them). Start each with the "
                         f"project on its path: PYTHONPATH={root} dask scheduler / dask worker ADDRESS "
                         "(see docs/batch.md)")


def _dask(tasks: Sequence[GroupTask], client) -> Iterable[List[ClipResult]]:
    from dask.distributed import as_completed
    from .worker import run_group
    with client:
        futures = client.map(run_group, list(tasks), pure=False)
        for future in as_completed(futures):
            yield future.result()


def _template(args):
    from ...core.models import modelfiles
    return modelfiles.resolve_template(args.template)


def _character(args):
    """The batch's character (:mod:`.character`), fitted and with VOCA's fields transferred; or None."""
    if args.target is None:
        return None
    from ...core.models import modelfiles
    cache = os.path.abspath(args.cache) if args.cache else None
    voca = modelfiles.load_voca(str(modelfiles.resolve_voca(args.voca)), cache)
    from . import character as batch_character
    character = batch_character.prepare(args, modelfiles.resolve_template(args.template), voca)
    print(f"batch: {batch_character.report(character)}", file=sys.stderr)
    return character


def _tasks(args, clips: List[ClipSpec], formats: tuple, out_dir: str, n_executors: int,
           character=None, articulation=(True, True, None)) -> List[GroupTask]:
    from ...core import batch as core_batch
    from ...core.models import modelfiles
    voca = str(modelfiles.resolve_voca(args.voca))
    ds = str(modelfiles.resolve_deepspeech(args.deepspeech))
    template = str(modelfiles.resolve_template(args.template))
    size = max(1, min(args.batch_size, math.ceil(len(clips) / max(1, n_executors))))
    cache = os.path.abspath(args.cache) if args.cache else None
    source = os.path.abspath(args.emotion_source) if args.emotion_source else None
    closures, detect, phonemes = articulation
    return [GroupTask(tuple(group), out_dir, formats, voca, ds, template, args.fps, cache, source, character,
                      closures, detect, phonemes)
            for group in core_batch.groups(clips, size)] if clips else []


def _check(args, clips: List[ClipSpec], formats: tuple) -> List[ClipSpec]:
    """Refusals of the whole batch, and per-clip problems found before any work."""
    if args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    common.check_fps(args.fps)                       # one range and wording for every command's --fps
    needs_blender = [f for f in formats if f in BLENDER_FORMATS and not args.scheduler]
    if args.library:
        needs_blender.append("--library")
        if not args.library.lower().endswith(".blend"):
            raise InputError(f"--library '{args.library}' must end in .blend")
        folder = os.path.dirname(os.path.abspath(args.library))
        if not os.path.isdir(folder) and folder != os.path.abspath(args.out):
            raise InputError(f"cannot write --library '{args.library}': its folder does not exist")
    if needs_blender:
        common.import_bpy("batch " + " ".join(needs_blender))    # a Ctrl-C while Blender starts: said after
        from ...blender import compat
        blender_formats = [f for f in formats if f in BLENDER_FORMATS]
        if args.workers > 1 and blender_formats and compat.in_blender_program():
            raise InputError(f"--workers {args.workers} with {', '.join(blender_formats)}: inside the Blender "
                             "program the worker processes would be its bundled Python, which cannot load Blender; "
                             "give --workers 1 here, or run the batch with the bpy module (pip install bpy)")
    from .character import check_flags  # numpy: only when a batch runs
    check_flags(args)
    if args.emotion_source and not os.path.exists(args.emotion_source):
        raise InputError(f"--emotion-source '{args.emotion_source}' was not found. Check the path.")
    out = []
    for c in clips:
        if c.problem is None and c.emotion and not args.emotion_source:
            c = dataclasses.replace(c, problem=f"emotion '{c.emotion}' needs --emotion-source (where the "
                                    "emotion shapes come from)")
        if c.problem is None:
            c = _check_name_length(c, formats)
        out.append(c)
    return out


def _check_name_length(clip: ClipSpec, formats: tuple) -> ClipSpec:
    """The clip with a ``problem`` when one of its file names (``NAME.FMT``; a ``.blend`` one byte more, for
    its ``.blend1``) is longer than file systems allow — found before any work, not by a failed write."""
    from ...core.outputs import NAME_MAX
    for fmt in formats:
        size = len(f"{clip.name}.{fmt}".encode("utf-8", "surrogateescape")) + (fmt == "blend")
        if size > NAME_MAX:
            return dataclasses.replace(clip, problem=f"the clip name is too long: '{clip.name}.{fmt}' would be "
                                       f"{size} bytes in UTF-8, file systems allow at most {NAME_MAX}; give it a "
                                       "shorter name (CSV column 'name')")
    return clip


def _articulation(args, clips: Sequence[ClipSpec]) -> tuple:
    """(closures, detect, phonemes ext) of the batch; one warning line when PocketSphinx is missing."""
    closures = not args.no_closures
    phonemes = phonemes_format(args.phonemes)
    wants = closures or bool(phonemes)
    detect = True
    if wants and any(c.alignment is None for c in clips if c.problem is None):
        from ...core.phonemes import detector_available
        detect, reason = detector_available()
        if not detect:
            print(f"warning: {' '.join(str(reason).split())} — clips without an alignment file get no lip "
                  "closures" + (" and no phones" if phonemes else ""), file=sys.stderr)
    return closures, detect, phonemes[0].split(".", 1)[1] if phonemes else None


def _remove_leftovers(out_dir: str, clips: Sequence[ClipSpec], formats: tuple) -> None:
    """Delete temporary files an interrupted run left for ``clips``: the batch's own ``.NAME.FMT.<id>.FMT``
    and those of :mod:`voca_addon.core.outputs` (:func:`~voca_addon.core.outputs.sweep_leftovers`)."""
    from pathlib import Path
    from ...core.outputs import sweep_leftovers
    prefixes = tuple(f".{c.name}.{fmt}." for c in clips for fmt in formats)
    for entry in os.scandir(out_dir):
        if entry.name.startswith(prefixes) and entry.is_file():
            os.remove(entry.path)
    for clip in clips:
        for path in output_paths(out_dir, clip.name, formats):
            sweep_leftovers(Path(path))


def _execute(args, tasks: List[GroupTask], client, clips: List[ClipSpec], results: dict, out_dir: str) -> None:
    """Run the groups on the chosen executor; record each clip's result, print progress, keep the summary."""
    from .processes import stop_if_interrupted
    progress = Progress(sum(len(t.clips) for t in tasks), folder=os.path.isdir(args.input))
    runs = (_dask(tasks, client) if client else
            _processes(tasks, args.workers) if args.workers > 1 and len(tasks) > 1 else _local(tasks))
    from .worker import GroupInterrupted

    def record(group):
        for result in group:
            results[result.name] = result
            progress.clip(result)
    try:
        for group in runs:
            record(group)
            write_summary(out_dir, [results[c.name] for c in clips if c.name in results])
    except GroupInterrupted as stopped:         # the clips the group had finished are done, not interrupted
        record(stopped.results)
        raise
    stop_if_interrupted()


def _interrupted(out_dir: str, clips: Sequence[ClipSpec], results: dict) -> None:
    """Ctrl-C after the manifest was written: the summary says what was done, the clips not done
    ``interrupted`` (before it, nothing was written and nothing is)."""
    from .manifest import MANIFEST
    if os.path.isfile(os.path.join(out_dir, MANIFEST)):
        summary = write_summary(out_dir, [results.get(c.name) or ClipResult(
            c.name, c.audio, "interrupted", error="the batch was interrupted before this clip was done")
            for c in clips])
        print(f"batch: interrupted; summary {summary[0]}", file=sys.stderr)


def _check_existing(args, clips: Sequence[ClipSpec], formats: tuple, out_dir: str) -> None:
    """Refuse, before anything is written, files in ``out_dir`` the batch would replace without leave: any of
    its outputs (clips' files, summary, manifest, ``--library``) that exists, unless ``--overwrite``, or
    ``--resume`` onto a folder whose manifest says a batch made them (checked by :mod:`.manifest`)."""
    from . import manifest as batch_manifest
    manifest = os.path.join(out_dir, batch_manifest.MANIFEST)
    if args.overwrite or (args.resume and os.path.isfile(manifest)):
        return
    paths = [p for c in clips for p in output_paths(out_dir, c.name, formats)]
    paths += [os.path.join(out_dir, SUMMARY + ext) for ext in (".json", ".csv")] + [manifest]
    paths += [os.path.abspath(args.library)] if args.library else []
    found = [p for p in paths if os.path.lexists(p)]
    if not found:
        return
    names = ", ".join(os.path.relpath(p, out_dir) if p.startswith(out_dir + os.sep) else p for p in found[:SHOWN])
    more = f", … ({len(found)} in all)" if len(found) > SHOWN else ""
    how = ("they were not made by a batch (no batch_manifest.json): add --overwrite to replace them"
           if args.resume else "add --overwrite to replace them, --resume to carry on the batch that made them")
    raise InputError(f"'{out_dir}' already holds files this batch would write ({names}{more}); {how}, "
                     "or choose another --out")


def run(args) -> int:
    """Run the batch; returns 0, or :data:`EXIT_SOME_FAILED` when some clip failed. Ctrl-C anywhere stops it
    (``KeyboardInterrupt``: exit 130), also inside an exporter that catches it (:mod:`.processes`)."""
    from .processes import recording_interrupts
    with recording_interrupts():
        return _run(args)


def _run(args) -> int:
    from ...core.models import modelfiles
    formats = parse_formats(args.format)
    if args.library and "npz" not in formats:
        formats = ("npz",) + formats                     # the library is built from the clips' .npz
    formats += phonemes_format(args.phonemes)            # NAME.phonemes.EXT: an output like the others
    default = common.parse_style(args.style) if args.style else args.condition
    clips = _check(args, read_input(args.input, default), formats)
    modelfiles.check_model_files(args.voca, args.deepspeech, args.template)
    out_dir = os.path.abspath(args.out)
    if not os.path.isdir(os.path.dirname(out_dir)):
        raise InputError(f"cannot create '{out_dir}': the folder '{os.path.dirname(out_dir)}' does not exist")
    from ...core import claims
    claims.claim(out_dir)                                # one batch at a time into a folder (its manifest)
    from . import manifest as batch_manifest
    made_for = batch_manifest.made_for(args, formats, default, clips)
    done = {c.name for c in clips
            if args.resume and all(map(os.path.isfile, output_paths(out_dir, c.name, formats)))}
    if args.resume and os.path.isdir(out_dir):            # outputs made for other settings: refused
        batch_manifest.check_resume(out_dir, made_for, any(
            os.path.isfile(p) for c in clips for p in output_paths(out_dir, c.name, formats)), done)
    _check_existing(args, clips, formats, out_dir)      # nothing replaced without leave
    articulation = _articulation(args, clips)
    character = _character(args)                         # fitted once, before any clip (or None)
    client = dask_client(args.scheduler) if args.scheduler else None
    os.makedirs(out_dir, exist_ok=True)
    results = {c.name: ClipResult(c.name, c.audio, "skipped", outputs=output_paths(out_dir, c.name, formats))
               for c in clips if c.name in done}
    try:
        batch_manifest.write(out_dir, made_for)          # what the outputs in out_dir are made for
        todo = [c for c in clips if c.name not in done]
        _remove_leftovers(out_dir, todo, formats)
        tasks = _tasks(args, todo, formats, out_dir, 1 if client else args.workers, character, articulation)
        print(f"batch: {len(clips)} clips, {len(done)} already done, {len(tasks)} groups", file=sys.stderr)
        _execute(args, tasks, client, clips, results, out_dir)
    except KeyboardInterrupt:
        _interrupted(out_dir, clips, results)
        raise
    summary = write_summary(out_dir, [results[c.name] for c in clips])
    failed = [r for r in results.values() if r.outcome == "failed"]
    print(f"batch: {len(clips) - len(failed) - len(done)} written, {len(done)} skipped, {len(failed)} failed; "
          f"summary {summary[0]}", file=sys.stderr)
    usable = [c for c in clips if results[c.name].outcome != "failed"]
    if args.library and usable:
        from .worker import write_library
        count = write_library(os.path.abspath(args.library), usable, out_dir, str(_template(args)), character)
        print(f"batch: dialogue library {args.library}: {count} clips", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else 0
