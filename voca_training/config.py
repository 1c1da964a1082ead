"""The training config: an INI file like VOCA's ``training_config.cfg``, every value defaulting to VOCA's.

Sections and keys are VOCA's own (TimoBolkart/voca ``config_parser.py``), so VOCA's config files and the
seed project's RAVDESS config load as they are. A few keys are ours (marked "ours" below); a few of VOCA's
keys are accepted but do nothing here, because the command line gives those paths (``--data``,
``--deepspeech``, ``--out``) or the feature is not part of this trainer (rendering). They are reported
in :attr:`TrainingConfig.notes`. Any other key is refused (a typo must not silently become a default).

Contract: stdlib only (+ :mod:`voca_addon.core.face.voca` names); no TensorFlow. Problems raise
:class:`~voca_training.errors.ConfigError` naming the section, the key and what to write instead.
"""
from __future__ import annotations

import configparser
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

from voca_addon.core.face.voca import DECODER_SCOPES, NUM_FEATURES, VOCASET_SUBJECTS, WINDOW

from .errors import ConfigError

# --- VOCA's defaults (config_parser.py, commit 50bf785) ---------------------------------------------
VOCA_TRAINING_SUBJECTS = VOCASET_SUBJECTS
VOCA_VALIDATION_SUBJECTS = ("FaceTalk_170811_03275_TA", "FaceTalk_170908_03277_TA")
VOCA_TESTING_SUBJECTS = ("FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA")
VOCA_TRAINING_SEQUENCES = tuple(f"sentence{i:02d}" for i in range(1, 41))
VOCA_HELD_OUT_SEQUENCES = tuple(f"sentence{i:02d}" for i in range(21, 41))
NUM_VERTICES = 5023          # FLAME vertices
EXPRESSION_DIM = 50          # code size (fc2 outputs, decoder rows)
SIZE_FACTOR = 1              # speech-encoder filters 32·f, 32·f, 64·f, 64·f
CONSECUTIVE_FRAMES = 2       # frames per training window
VELOCITY_WEIGHT = 10.0
ACCELERATION_WEIGHT = 0.0
VERTS_REGULARIZER_WEIGHT = 0.0
BATCH_SIZE = 64              # windows per step (each of num_consecutive_frames frames)
LEARNING_RATE = 1e-4
DECAY_RATE = 1.0             # < 1: learning rate × decay_rate per epoch (staircase); 1: constant
EPOCH_NUM = 100
ADAM_BETA1 = 0.9
SAVE_EVERY_EPOCHS = 10       # VOCA saves every 10 epochs (a fixed number there; a key here)
# --- ours ----------------------------------------------------------------------------------------
DECODER_SCOPE = DECODER_SCOPES[0].split("/", 1)[1]   # "FlameExpressionLayer", the release's name
CONDITION_KINDS = ("subject", "emotion")              # what a condition (one-hot input) stands for
ENCODER_INITS = ("voca", "scaled")                    # VOCA's σ 0.02 / 0.1, or fan-in scaled (He / LeCun)
RANDOM_SEED = 0
ALL_SEQUENCES = "*"          # in a sequence list: every sequence the data has for the subject

SECTIONS = ("Input Output", "Audio Parameters", "Model Parameters", "Data Setup",
            "Learning Parameters", "Visualization Parameters")
# VOCA keys that must keep VOCA's value: this trainer (and the add-on's engine) implement only that.
FIXED = {
    ("Audio Parameters", "audio_feature_type"): "deepspeech",
    ("Audio Parameters", "num_audio_features"): NUM_FEATURES,
    ("Audio Parameters", "audio_window_size"): WINDOW,
    ("Audio Parameters", "audio_window_stride"): 1,
    ("Audio Parameters", "condition_speech_features"): True,
}
# VOCA keys read and ignored: the command line gives these paths; rendering is not part of training here.
IGNORED = {("Input Output", k) for k in (
    "checkpoint_dir", "template_fname", "deepspeech_graph_fname", "verts_mmaps_path", "raw_audio_path",
    "processed_audio_path", "templates_path", "data2array_verts_path")} | {
    ("Visualization Parameters", "num_render_sequences")}


@dataclass(frozen=True)
class TrainingConfig:
    """Every training setting; field names are the INI keys (see :data:`FIELD_SECTIONS`)."""
    # [Input Output]
    expression_basis_fname: str = ""          # "" → PCA of the training displacements
    # [Audio Parameters]
    speech_encoder_size_factor: int = SIZE_FACTOR
    # [Model Parameters]
    num_vertices: int = NUM_VERTICES
    expression_dim: int = EXPRESSION_DIM
    init_expression: bool = True
    num_consecutive_frames: int = CONSECUTIVE_FRAMES
    absolute_reconstruction_loss: bool = False
    velocity_weight: float = VELOCITY_WEIGHT
    acceleration_weight: float = ACCELERATION_WEIGHT
    verts_regularizer_weight: float = VERTS_REGULARIZER_WEIGHT
    decoder_scope: str = DECODER_SCOPE        # ours
    encoder_init: str = "voca"                # ours
    # [Data Setup]
    subject_for_training: Tuple[str, ...] = VOCA_TRAINING_SUBJECTS
    sequence_for_training: Tuple[str, ...] = VOCA_TRAINING_SEQUENCES
    subject_for_validation: Tuple[str, ...] = VOCA_VALIDATION_SUBJECTS
    sequence_for_validation: Tuple[str, ...] = VOCA_HELD_OUT_SEQUENCES
    subject_for_testing: Tuple[str, ...] = VOCA_TESTING_SUBJECTS
    sequence_for_testing: Tuple[str, ...] = VOCA_HELD_OUT_SEQUENCES
    condition_by: str = "subject"             # ours
    # [Learning Parameters]
    batch_size: int = BATCH_SIZE
    learning_rate: float = LEARNING_RATE
    decay_rate: float = DECAY_RATE
    epoch_num: int = EPOCH_NUM
    adam_beta1_value: float = ADAM_BETA1
    save_every_epochs: int = SAVE_EVERY_EPOCHS  # ours (VOCA: fixed 10)
    random_seed: int = RANDOM_SEED              # ours
    # not a key: what was read but ignored, for the user
    notes: Tuple[str, ...] = field(default=(), compare=False)

    @property
    def decoder_scope_path(self) -> str:
        """The decoder's tensor-name scope, e.g. ``VOCA/FlameExpressionLayer``."""
        return f"VOCA/{self.decoder_scope}"


FIELD_SECTIONS: Dict[str, str] = {
    "expression_basis_fname": "Input Output", "speech_encoder_size_factor": "Audio Parameters",
    **{k: "Model Parameters" for k in (
        "num_vertices", "expression_dim", "init_expression", "num_consecutive_frames",
        "absolute_reconstruction_loss", "velocity_weight", "acceleration_weight",
        "verts_regularizer_weight", "decoder_scope", "encoder_init")},
    **{k: "Data Setup" for k in (
        "subject_for_training", "sequence_for_training", "subject_for_validation",
        "sequence_for_validation", "subject_for_testing", "sequence_for_testing", "condition_by")},
    **{k: "Learning Parameters" for k in (
        "batch_size", "learning_rate", "decay_rate", "epoch_num", "adam_beta1_value",
        "save_every_epochs", "random_seed")},
}


def _convert(section: str, key: str, text: str, kind):
    """One INI value as the field's type."""
    where = f"[{section}] {key} = {text!r}"
    try:
        if kind is bool:
            low = text.strip().lower()
            if low not in configparser.RawConfigParser.BOOLEAN_STATES:
                raise ValueError
            return configparser.RawConfigParser.BOOLEAN_STATES[low]
        if kind is int:
            number = float(text)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            return float(text)
        if kind == Tuple[str, ...]:
            return tuple(text.split())
        return text.strip()
    except ValueError:
        name = {bool: "True or False", int: "a whole number", float: "a number"}.get(kind, "text")
        raise ConfigError(f"{where} is not {name}: write {name} there") from None


def _field_types() -> Dict[str, object]:
    hints = {f.name: f.type for f in dataclasses.fields(TrainingConfig)}
    types = {"str": str, "int": int, "float": float, "bool": bool, "Tuple[str, ...]": Tuple[str, ...]}
    return {name: types[str(hint)] for name, hint in hints.items() if name in FIELD_SECTIONS}


def _check_fixed(section: str, key: str, text: str) -> None:
    wanted = FIXED[(section, key)]
    value = _convert(section, key, text, type(wanted))
    if value != wanted:
        raise ConfigError(f"[{section}] {key} = {text.strip()} is not supported: this trainer and the add-on's "
                          f"engine implement VOCA's {key} = {wanted}; set it to {wanted} or remove the line")


def _read_parser(path: Path) -> configparser.RawConfigParser:
    if not path.is_file():
        raise ConfigError(f"the config file '{path}' was not found: give an INI file like "
                          "voca_training/configs/voca_default.ini, or leave --config out for VOCA's defaults")
    parser = configparser.RawConfigParser()
    parser.optionxform = str           # keys are case-sensitive names, like VOCA's
    try:
        parser.read_string(path.read_text("utf-8"), source=str(path))
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"'{path}' is not a readable INI file ({exc}); see "
                          "voca_training/configs/voca_default.ini for the layout") from None
    return parser


def load_config(path: Optional[os.PathLike] = None) -> TrainingConfig:
    """Read and validate a config file; ``None`` gives VOCA's defaults.

    A relative ``expression_basis_fname`` is taken relative to the config file's folder.

    Raises
    ------
    ConfigError
        Missing file, unknown section or key, a value of the wrong type or out of range.
    """
    if path is None:
        return validate(TrainingConfig())
    path = Path(path).expanduser()
    parser = _read_parser(path)
    types, values, notes = _field_types(), {}, []
    for section in parser.sections():
        if section not in SECTIONS:
            raise ConfigError(f"'{path}': unknown section [{section}]; the sections are "
                              + ", ".join(f"[{s}]" for s in SECTIONS))
        for key, text in parser.items(section):
            if (section, key) in FIXED:
                _check_fixed(section, key, text)
            elif (section, key) in IGNORED:
                notes.append(f"[{section}] {key} ignored (given on the command line or not used here)")
            elif FIELD_SECTIONS.get(key) == section:
                values[key] = _convert(section, key, text, types[key])
            else:
                known = sorted(k for k, s in FIELD_SECTIONS.items() if s == section)
                known += sorted(k for s, k in FIXED.keys() | IGNORED if s == section)
                raise ConfigError(f"'{path}': unknown key '{key}' in [{section}]; keys there: {', '.join(known)}")
    basis = values.get("expression_basis_fname", "")
    if basis and not Path(basis).expanduser().is_absolute():
        values["expression_basis_fname"] = str((path.parent / basis).resolve())
    return validate(TrainingConfig(**values, notes=tuple(notes)))


def _require(ok: bool, section: str, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"[{section}] {key}: {message}")


def validate(cfg: TrainingConfig) -> TrainingConfig:
    """Check ranges and combinations; return ``cfg`` with the decoder scope normalised."""
    m, d, lp = "Model Parameters", "Data Setup", "Learning Parameters"
    _require(cfg.speech_encoder_size_factor >= 1, "Audio Parameters", "speech_encoder_size_factor",
             f"must be a whole number >= 1 (filters 32·f, 64·f), got {cfg.speech_encoder_size_factor}")
    _require(cfg.num_vertices >= 1, m, "num_vertices", "must be >= 1 (FLAME has 5023)")
    _require(cfg.expression_dim >= 1, m, "expression_dim", "must be >= 1 (VOCA uses 50)")
    _require(cfg.num_consecutive_frames >= 1, m, "num_consecutive_frames", "must be >= 1")
    for key in ("velocity_weight", "acceleration_weight", "verts_regularizer_weight"):
        _require(getattr(cfg, key) >= 0, m, key, f"must be >= 0, got {getattr(cfg, key)}")
    _require(cfg.velocity_weight == 0 or cfg.num_consecutive_frames >= 2, m, "velocity_weight",
             "a velocity loss needs num_consecutive_frames >= 2: raise it or set velocity_weight = 0")
    _require(cfg.acceleration_weight == 0 or cfg.num_consecutive_frames >= 3, m, "acceleration_weight",
             "an acceleration loss needs num_consecutive_frames >= 3: raise it or set acceleration_weight = 0")
    scope = cfg.decoder_scope[len("VOCA/"):] if cfg.decoder_scope.startswith("VOCA/") else cfg.decoder_scope
    scopes = [s.split("/", 1)[1] for s in DECODER_SCOPES]
    _require(scope in scopes, m, "decoder_scope", f"must be one of {', '.join(scopes)}, got {cfg.decoder_scope!r}")
    _require(cfg.encoder_init in ENCODER_INITS, m, "encoder_init",
             f"must be one of {', '.join(ENCODER_INITS)}, got {cfg.encoder_init!r}")
    _require(cfg.condition_by in CONDITION_KINDS, d, "condition_by",
             f"must be one of {', '.join(CONDITION_KINDS)}, got {cfg.condition_by!r}")
    _require(bool(cfg.subject_for_training), d, "subject_for_training", "name at least one training subject")
    _require(bool(cfg.sequence_for_training), d, "sequence_for_training",
             f"name at least one training sequence (or {ALL_SEQUENCES} for all)")
    _require(cfg.batch_size >= 1, lp, "batch_size", "must be >= 1")
    _require(cfg.learning_rate > 0, lp, "learning_rate", "must be > 0")
    _require(0 < cfg.decay_rate <= 1, lp, "decay_rate", "must be in (0, 1] (1 = constant learning rate)")
    _require(cfg.epoch_num >= 1, lp, "epoch_num", "must be >= 1")
    _require(0 <= cfg.adam_beta1_value < 1, lp, "adam_beta1_value", "must be in [0, 1)")
    _require(cfg.save_every_epochs >= 1, lp, "save_every_epochs", "must be >= 1")
    return dataclasses.replace(cfg, decoder_scope=scope)


def _format(value) -> str:
    if isinstance(value, tuple):
        return " ".join(value)
    return repr(value) if isinstance(value, float) else str(value)


def to_ini(cfg: TrainingConfig) -> str:
    """The config as INI text (every key, VOCA's layout); :func:`load_config` reads it back equal."""
    parser = configparser.RawConfigParser()
    parser.optionxform = str
    for section in SECTIONS[:-1]:
        parser.add_section(section)
    for (section, key), value in FIXED.items():
        parser.set(section, key, str(value))
    for name, section in FIELD_SECTIONS.items():
        parser.set(section, name, _format(getattr(cfg, name)))
    lines = []

    class _Sink:
        def write(self, text):
            lines.append(text)
    parser.write(_Sink())
    return "".join(lines)
