"""Training checkpoints: TF tensor bundles in the release's names, plus their condition names.

A checkpoint is ``<out>/gstep_<step>.model.index`` + ``.data-00000-of-00001`` (written by
:func:`voca_addon.core.formats.tfbundle.write_checkpoint`, byte-compatible with TF's Saver) holding the 18
weights, Adam's 32 slots, ``VOCA/global_step``, ``VOCA/beta1_power``, ``VOCA/beta2_power`` (see
:mod:`voca_training.model`), and ``gstep_<step>.model.conditions.json`` (see
:mod:`voca_addon.core.models.conditions`). ``<out>/checkpoint`` names the newest one in TF's text format, so
``tf.train.latest_checkpoint(out)`` finds it too. The add-on loads the weights without TensorFlow; the
official ``.meta`` graph restores a release-shape checkpoint (8 conditions, size factor 1, code 50,
scope ``FlameExpressionLayer``) with its own Saver.

Contract: numpy + ``voca_addon.core``; no TensorFlow. Writes only under the output folder.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from voca_addon.core.models import conditions
from voca_addon.core.formats import tfbundle
from voca_addon.core.face import voca
from voca_addon.core.errors import ModelFileError

PREFIX_FORMAT = "gstep_{}.model"              # VOCA's checkpoint names
PREFIX_PATTERN = re.compile(r"^gstep_(\d+)\.model\.index$")
STATE_FILE = "checkpoint"                     # TF's CheckpointState text file
OPTIMIZER_MARKER = "/Adam"


def prefix_for(out: os.PathLike, step: int) -> Path:
    """``<out>/gstep_<step>.model``."""
    return Path(out) / PREFIX_FORMAT.format(int(step))


def list_checkpoints(out: os.PathLike) -> Dict[int, Path]:
    """{step: prefix} of the ``gstep_<step>.model`` checkpoints in a folder."""
    folder = Path(out)
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = PREFIX_PATTERN.match(path.name)
        if match:
            found[int(match.group(1))] = folder / path.name[: -len(".index")]
    return dict(sorted(found.items()))


def latest(out: os.PathLike) -> Optional[Path]:
    """The newest checkpoint of a training folder (highest step), or None."""
    found = list_checkpoints(out)
    return found[max(found)] if found else None


def _write_state_file(prefix: Path) -> None:
    folder = prefix.parent
    steps = list_checkpoints(folder)
    lines = [f'model_checkpoint_path: "{prefix.name}"']
    lines += [f'all_model_checkpoint_paths: "{p.name}"' for p in steps.values()]
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", "utf-8")
    os.replace(tmp, folder / STATE_FILE)


def save(out: os.PathLike, tensors: Mapping[str, np.ndarray], names: Sequence[str], condition_by: str) -> Path:
    """Write one checkpoint (step from ``VOCA/global_step``) with its conditions file; returns the prefix."""
    step = int(np.asarray(tensors["VOCA/global_step"]))
    prefix = prefix_for(out, step)
    tfbundle.write_checkpoint(prefix, dict(tensors))
    conditions.write_conditions(prefix, names, condition_by)
    _write_state_file(prefix)
    return prefix


def read_dims(prefix: os.PathLike) -> voca.VocaDims:
    """The variant of a checkpoint from its ``.index`` alone."""
    entries = tfbundle.read_index(prefix)
    return voca.infer_dims({n: e.shape for n, e in entries.items()})


def load_weights(prefix: os.PathLike) -> Tuple[Dict[str, np.ndarray], voca.VocaDims]:
    """The 18 weights (float32) and dimensions of a VOCA checkpoint (the release's or one of ours).

    Raises
    ------
    ModelFileError
        Missing files, not a VOCA checkpoint, inconsistent shapes.
    """
    prefix = tfbundle.normalize_prefix(Path(prefix).expanduser())
    dims = read_dims(prefix)
    tensors = tfbundle.read_checkpoint(prefix, voca.weight_names(dims.decoder_scope))
    return {n: np.asarray(a, np.float32) for n, a in tensors.items()}, dims


def load_training_state(prefix: os.PathLike, state_names: Sequence[str]) -> Dict[str, np.ndarray]:
    """Every tensor needed to resume (weights, Adam slots, step, β powers).

    Raises
    ------
    ModelFileError
        The checkpoint lacks optimizer state (e.g. it holds weights only): start a new run with
        ``--init`` instead.
    """
    entries = tfbundle.read_index(prefix)
    missing = [n for n in state_names if n not in entries]
    if missing:
        raise ModelFileError(f"the checkpoint {prefix} has no training state (e.g. '{missing[0]}'), so it cannot "
                             "be resumed: start a new run from its weights with --init")
    return tfbundle.read_checkpoint(prefix, state_names)


def rename_decoder(weights: Mapping[str, np.ndarray], scope: str) -> Dict[str, np.ndarray]:
    """Weights with the decoder moved to ``scope`` (``VOCA/FlameExpressionLayer`` or ``VOCA/ExpressionLayer``)."""
    out = {}
    for name, value in weights.items():
        for old in voca.DECODER_SCOPES:
            if name.startswith(old + "/"):
                name = scope + name[len(old):]
        out[name] = value
    return out
