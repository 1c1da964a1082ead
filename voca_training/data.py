"""VOCA-format training data: opened, checked and split before anything is written.

A data folder holds VOCA's four files (``training_data/`` of the VOCA repository, VOCASET's release):

* ``data_verts.npy`` — float [rows, V, 3], metres; memory-mapped, never read whole;
* ``raw_audio_fitted.pkl`` — {subject: {sequence: {'audio': int16 [n] or [n, ch], 'sample_rate': Hz}}};
  or instead a folder ``audio/<subject>/<sequence>`` (``.wav`` appended unless the name has it);
* ``templates.pkl`` — {subject: float [V, 3]}, each subject's neutral face;
* ``subj_seq_to_idx.pkl`` — {subject: {sequence: {frame: row of data_verts}}}, frames 0-based.

Pickles are read with :func:`voca_addon.core.formats.safepickle.safe_load` (plain containers and numpy arrays
only). Sequences are 60 fps (VOCASET's capture rate). A sequence's vertex frames and its audio's frame
count ``round(seconds · 60)`` may differ by :data:`FRAME_TOLERANCE` frames (the shorter wins, as in VOCA);
more means the audio and the vertices do not belong together, and is refused.

Conditions (the network's one-hot input) are the training subjects in config order (VOCA), or, with
``condition_by = emotion``, the emotions parsed from RAVDESS-style sequence names
(modality-channel-emotion-intensity-statement-repetition-actor, e.g. ``03-01-05-02-01-01-01.wav`` =
angry), ordered by RAVDESS code.

Contract: numpy + stdlib + ``voca_addon.core``; no TensorFlow; reads only. Every refusal is a
:class:`~voca_training.errors.DataError` (or the ``ModelFileError`` of an unsafe pickle) naming the file,
subject or sequence and what to fix.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from voca_addon.core.speech import audio as audio_mod
from voca_addon.core.speech.features import num_output_frames
from voca_addon.core.formats.safepickle import safe_load

from .config import ALL_SEQUENCES, TrainingConfig
from .errors import DataError

VERTS_FILE = "data_verts.npy"
RAW_AUDIO_FILE = "raw_audio_fitted.pkl"
AUDIO_DIR = "audio"
TEMPLATES_FILE = "templates.pkl"
INDEX_FILE = "subj_seq_to_idx.pkl"
FPS = 60                   # frames per second of VOCA data and of the add-on's animation
FRAME_TOLERANCE = 2        # frames (33 ms) audio and vertices may differ; VOCA trims to the shorter
INT16_SCALE = 32768.0      # float audio in [-1, 1] is scaled to the int16 range, like float WAVs
RAVDESS_FIELDS = ("modality", "channel", "emotion", "intensity", "statement", "repetition", "actor")
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")  # codes 01..08


@dataclass(frozen=True)
class Sequence:
    """One (subject, sequence) of a split: its rows of ``data_verts`` in frame order and its audio."""
    subject: str
    name: str
    rows: np.ndarray           # int64 [F], row of data_verts for frame 0..F-1
    condition: int             # 0-based condition, -1: none (validation averages over all conditions)
    load_audio: Callable[[], "audio_mod.Audio"] = field(repr=False, compare=False)

    @property
    def num_frames(self) -> int:
        return int(len(self.rows))

    @property
    def audio(self) -> "audio_mod.Audio":
        """The sequence's audio, decoded on each access (float64 copies are not kept for a whole corpus)."""
        return self.load_audio()


@dataclass(frozen=True)
class Dataset:
    """An opened, checked data folder and its splits."""
    root: Path
    verts: np.ndarray          # memmap [rows, V, 3]
    templates: Mapping[str, np.ndarray]   # subject → float32 [V, 3]
    conditions: Tuple[str, ...]
    condition_by: str
    train: Tuple[Sequence, ...]
    validation: Tuple[Sequence, ...]
    skipped: Tuple[str, ...]   # "subject/sequence" named by the config but absent from the data

    @property
    def num_vertices(self) -> int:
        return int(self.verts.shape[1])


def parse_ravdess_name(name: str) -> Dict[str, int]:
    """The seven two-digit fields of a RAVDESS file name (``03-01-05-02-01-01-01[.wav]``).

    Raises
    ------
    DataError
        The name does not have seven two-digit fields or its emotion code is not 01..08.
    """
    stem = Path(name).name
    stem = stem[: -len(Path(stem).suffix)] if Path(stem).suffix.lower() in (".wav", ".mp4") else stem
    parts = stem.split("-")
    if len(parts) != len(RAVDESS_FIELDS) or not all(len(p) == 2 and p.isdigit() for p in parts):
        raise DataError(f"'{name}' is not a RAVDESS-style name (modality-channel-emotion-intensity-"
                        "statement-repetition-actor, e.g. 03-01-05-02-01-01-01.wav): rename the sequence "
                        "or set condition_by = subject")
    fields = dict(zip(RAVDESS_FIELDS, (int(p) for p in parts)))
    if not 1 <= fields["emotion"] <= len(RAVDESS_EMOTIONS):
        raise DataError(f"'{name}' has emotion code {parts[2]}; RAVDESS codes are 01..08")
    return fields


def emotion_label(name: str) -> str:
    """The emotion of a RAVDESS-style name: ``03-01-05-...`` → ``'angry'``."""
    return RAVDESS_EMOTIONS[parse_ravdess_name(name)["emotion"] - 1]


# --------------------------------------------------------------------------------------------------
# the files
# --------------------------------------------------------------------------------------------------
def _required_files(root: Path) -> Dict[str, Path]:
    if not root.is_dir():
        raise DataError(f"the data folder '{root}' does not exist: give --data a folder holding {VERTS_FILE}, "
                        f"{RAW_AUDIO_FILE} (or {AUDIO_DIR}/), {TEMPLATES_FILE} and {INDEX_FILE}")
    paths = {n: root / n for n in (VERTS_FILE, TEMPLATES_FILE, INDEX_FILE)}
    missing = [n for n, p in paths.items() if not p.is_file()]
    if not (root / RAW_AUDIO_FILE).is_file() and not (root / AUDIO_DIR).is_dir():
        missing.append(f"{RAW_AUDIO_FILE} (or a folder {AUDIO_DIR}/<subject>/<sequence>.wav)")
    if missing:
        raise DataError(f"the data folder '{root}' lacks {', '.join(missing)}: a VOCA training folder holds "
                        f"{VERTS_FILE}, {RAW_AUDIO_FILE}, {TEMPLATES_FILE} and {INDEX_FILE} (see docs/training.md)")
    return paths


def _open_verts(path: Path, num_vertices: int) -> np.ndarray:
    try:
        verts = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"'{path}' is not a readable .npy array ({exc}): save the vertices with numpy.save") from None
    if verts.ndim != 3 or verts.shape[2] != 3 or verts.dtype.kind != "f":
        raise DataError(f"'{path}' holds {verts.dtype} {list(verts.shape)}; expected float [frames, vertices, 3]")
    if verts.shape[1] != num_vertices:
        raise DataError(f"'{path}' has {verts.shape[1]} vertices per frame but the config says num_vertices = "
                        f"{num_vertices}: use FLAME meshes ({num_vertices} vertices) or fix num_vertices")
    return verts


def _load_templates(path: Path, num_vertices: int, subjects) -> Dict[str, np.ndarray]:
    data = safe_load(path)
    if not isinstance(data, dict):
        raise DataError(f"'{path}' holds a {type(data).__name__}; expected {{subject: vertices [V, 3]}}")
    out = {}
    for subject in subjects:
        if subject not in data:
            raise DataError(f"'{path}' has no template for subject '{subject}': add its neutral mesh")
        tpl = np.asarray(data[subject])
        if tpl.shape != (num_vertices, 3) or tpl.dtype.kind not in "fiu":
            raise DataError(f"the template of subject '{subject}' in '{path}' has shape {list(tpl.shape)}; "
                            f"expected [{num_vertices}, 3] like the vertices (a FLAME mesh in FLAME's vertex order)")
        out[subject] = tpl.astype(np.float32)
    return out


def _load_index(path: Path) -> dict:
    index = safe_load(path)
    ok = isinstance(index, dict) and all(isinstance(s, dict) for s in index.values())
    if not ok:
        raise DataError(f"'{path}' is not {{subject: {{sequence: {{frame: row}}}}}} (VOCA's subj_seq_to_idx.pkl)")
    return index


def _frame_rows(index: dict, subject: str, seq: str, num_rows: int, path: Path) -> np.ndarray:
    """Rows of data_verts for frames 0..F-1 of one sequence (frame order, never dict order)."""
    frames = index[subject][seq]
    try:
        keys = np.array(sorted(int(f) for f in frames), dtype=np.int64)
        rows = np.array([int(frames[f]) for f in sorted(frames, key=int)], dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"'{path}': {subject}/{seq} must map integer frames to integer rows") from None
    if len(keys) == 0 or keys[0] != 0 or np.any(np.diff(keys) != 1):
        raise DataError(f"'{path}': {subject}/{seq} must list frames 0..N-1 without gaps "
                        f"(it has {len(keys)} frames from {keys[:1]} to {keys[-1:]})")
    if rows.min() < 0 or rows.max() >= num_rows:
        raise DataError(f"'{path}': {subject}/{seq} points at row {rows.max()} but {VERTS_FILE} has "
                        f"{num_rows} rows: the index and the vertices do not belong together")
    return rows


# --------------------------------------------------------------------------------------------------
# audio: VOCA's pickle, or a folder of WAVs
# --------------------------------------------------------------------------------------------------
def _audio_from_entry(entry, where: str) -> "audio_mod.Audio":
    if not isinstance(entry, dict) or "audio" not in entry or "sample_rate" not in entry:
        raise DataError(f"{where} must be {{'audio': samples, 'sample_rate': Hz}} (VOCA's raw audio format)")
    samples = np.asarray(entry["audio"])
    rate = int(entry["sample_rate"])
    if samples.dtype.kind not in "fiu" or samples.ndim not in (1, 2) or samples.shape[0] == 0 or rate <= 0:
        raise DataError(f"{where} holds {samples.dtype} {list(samples.shape)} at {rate} Hz; expected int16 "
                        "samples [n] or [n, channels] and a positive sample rate")
    values = samples.astype(np.float64)
    if samples.dtype.kind == "f" and np.abs(values).max() <= 1.0:
        values = values * INT16_SCALE
    values.setflags(write=False)
    return audio_mod.Audio(values, rate, where)


def _audio_reader(root: Path) -> Tuple[Callable[[str, str], Optional["audio_mod.Audio"]], str]:
    """A function (subject, sequence) → Audio or None, and a description of the source."""
    pkl = root / RAW_AUDIO_FILE
    if pkl.is_file():
        raw = safe_load(pkl)
        if not isinstance(raw, dict):
            raise DataError(f"'{pkl}' holds a {type(raw).__name__}; expected {{subject: {{sequence: audio}}}}")

        def from_pickle(subject, seq):
            entry = raw.get(subject, {}).get(seq) if isinstance(raw.get(subject), dict) else None
            return None if entry is None else _audio_from_entry(entry, f"{pkl.name}[{subject}][{seq}]")
        return from_pickle, str(pkl)

    def from_folder(subject, seq):
        name = seq if seq.lower().endswith(".wav") else seq + ".wav"
        path = root / AUDIO_DIR / subject / name
        return audio_mod.load_audio(path) if path.is_file() else None
    return from_folder, str(root / AUDIO_DIR)


# --------------------------------------------------------------------------------------------------
# splits and conditions
# --------------------------------------------------------------------------------------------------
def _pairs(index: dict, subjects, sequences) -> Tuple[List[Tuple[str, str]], List[str]]:
    """(subject, sequence) pairs of a split present in the index, and the named ones that are absent."""
    present, absent = [], []
    for subject in subjects:
        names = sorted(index.get(subject, {})) if ALL_SEQUENCES in sequences else sequences
        for seq in names:
            (present if seq in index.get(subject, {}) else absent).append((subject, seq))
    return present, [f"{s}/{q}" for s, q in absent]


def _conditions(cfg: TrainingConfig, train_pairs) -> Tuple[str, ...]:
    if cfg.condition_by == "subject":
        used = {s for s, _ in train_pairs}
        empty = [s for s in cfg.subject_for_training if s not in used]
        if empty:
            raise DataError(f"training subject(s) {', '.join(empty)} have none of the training sequences in "
                            f"{INDEX_FILE}: remove them from subject_for_training or add their data")
        return tuple(cfg.subject_for_training)
    codes = sorted({parse_ravdess_name(seq)["emotion"] for _, seq in train_pairs})
    return tuple(RAVDESS_EMOTIONS[c - 1] for c in codes)


def _condition_of(cfg: TrainingConfig, conditions, subject: str, seq: str) -> int:
    if cfg.condition_by == "subject":
        return conditions.index(subject) if subject in conditions else -1
    try:
        label = emotion_label(seq)
    except DataError:
        return -1
    return conditions.index(label) if label in conditions else -1


def _check_disjoint(splits: Mapping[str, List[Tuple[str, str]]]) -> None:
    seen: Dict[Tuple[str, str], str] = {}
    for split, pairs in splits.items():
        for pair in pairs:
            if pair in seen and seen[pair] != split:
                raise DataError(f"{pair[0]}/{pair[1]} is in both the {seen[pair]} and the {split} split: "
                                "the data splits must be disjoint (as in VOCA); fix [Data Setup]")
            seen[pair] = split


def _make_sequence(ctx, subject: str, seq: str, condition: int) -> Sequence:
    index, num_rows, index_path, read_audio, audio_src = ctx
    rows = _frame_rows(index, subject, seq, num_rows, index_path)
    clip = read_audio(subject, seq)
    if clip is None:
        raise DataError(f"no audio for {subject}/{seq} in {audio_src}: add it or drop the sequence from the config")
    audio_frames = num_output_frames(clip.num_samples, clip.rate, FPS)
    if abs(audio_frames - len(rows)) > FRAME_TOLERANCE:
        raise DataError(f"{subject}/{seq}: {len(rows)} vertex frames but its audio lasts {clip.duration_s:.3f} s "
                        f"= {audio_frames} frames at {FPS} fps (more than {FRAME_TOLERANCE} apart): the audio and "
                        "the vertices do not belong together; use the fitted audio of each sequence")
    frames = min(audio_frames, len(rows))
    return Sequence(subject, seq, rows[:frames], condition, lambda: read_audio(subject, seq))


def open_dataset(root: os.PathLike, cfg: TrainingConfig) -> Dataset:
    """Open a VOCA-format folder, check it against ``cfg`` and build the training / validation splits.

    Raises
    ------
    DataError
        Missing files, a malformed file, a template of the wrong size, a sequence whose audio and vertex
        frame counts differ, overlapping splits, a training subject without data.
    ModelFileError
        A pickle that names anything but plain containers and arrays (it is not loaded).
    """
    root = Path(root).expanduser()
    paths = _required_files(root)
    verts = _open_verts(paths[VERTS_FILE], cfg.num_vertices)
    index = _load_index(paths[INDEX_FILE])
    read_audio, audio_src = _audio_reader(root)
    train_pairs, skipped = _pairs(index, cfg.subject_for_training, cfg.sequence_for_training)
    val_pairs, skipped_val = _pairs(index, cfg.subject_for_validation, cfg.sequence_for_validation)
    test_pairs, _ = _pairs(index, cfg.subject_for_testing, cfg.sequence_for_testing)
    if not train_pairs:
        raise DataError(f"none of the training sequences named in the config are in '{paths[INDEX_FILE]}' "
                        f"(subjects there: {', '.join(sorted(index)[:10])}): fix subject_for_training / "
                        "sequence_for_training")
    _check_disjoint({"training": train_pairs, "validation": val_pairs, "testing": test_pairs})
    conditions = _conditions(cfg, train_pairs)
    templates = _load_templates(paths[TEMPLATES_FILE], verts.shape[1], sorted({s for s, _ in train_pairs + val_pairs}))
    ctx = (index, verts.shape[0], paths[INDEX_FILE], read_audio, audio_src)
    train = tuple(_make_sequence(ctx, s, q, _condition_of(cfg, conditions, s, q)) for s, q in train_pairs)
    val = tuple(_make_sequence(ctx, s, q, _condition_of(cfg, conditions, s, q)) for s, q in val_pairs)
    return Dataset(root, verts, templates, conditions, cfg.condition_by, train, val, tuple(skipped + skipped_val))
