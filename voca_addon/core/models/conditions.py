"""Names of a VOCA model's conditions (speaking styles), for menus and labels.

A model trained by ``python -m voca_addon train`` has a file beside its checkpoint,
``<prefix>.conditions.json``, e.g. ``gstep_1200.model.conditions.json``::

    {"format": "voca_addon.conditions", "version": 1, "condition_by": "emotion",
     "conditions": ["happy", "angry"]}

``conditions[k]`` is the name of condition ``k + 1`` (the 1-based index of ``--condition`` and of the
engine's :func:`~voca_addon.core.face.voca.condition_vector`). Without that file (the official release, other
people's checkpoints) the names are the 8 VOCASET training subjects for an 8-condition model and
``"Condition k"`` otherwise.

Contract: stdlib only (+ the subject names of :mod:`.voca`); any thread. :func:`condition_names` never
raises for a missing or unusable file (it is for drawing a UI): it falls back as above.
:func:`read_conditions` raises :class:`~.errors.ModelFileError` for a file that is present but wrong.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import InputError, ModelFileError
from ..face.voca import VOCASET_SUBJECTS

SUFFIX = ".conditions.json"
FORMAT = "voca_addon.conditions"
VERSION = 1
MAX_NAME_LENGTH = 63               # Blender's limit for enum item / shape-key names


def _prefix_text(prefix: os.PathLike) -> str:
    """Checkpoint prefix from the prefix itself or any of its files (``.index``, ``.meta``, ``.data-*``)."""
    text = os.fspath(prefix)
    for suffix in (SUFFIX, ".index", ".meta"):
        if text.endswith(suffix):
            return text[: -len(suffix)]
    head, sep, _ = text.rpartition(".data-")
    return head if sep else text


def conditions_path(prefix: os.PathLike) -> Path:
    """``<prefix>.conditions.json`` for a checkpoint prefix (or any file of the checkpoint)."""
    return Path(_prefix_text(prefix) + SUFFIX)


def fallback_names(num_conditions: int) -> List[str]:
    """The names used without a conditions file: VOCASET's subjects for 8, ``Condition k`` otherwise."""
    if num_conditions == len(VOCASET_SUBJECTS):
        return list(VOCASET_SUBJECTS)
    return [f"Condition {k}" for k in range(1, num_conditions + 1)]


def style_label(k: int, name: str) -> str:
    """A readable menu label for condition ``k`` (1-based): VOCASET subjects by their speaker number.

    ``FaceTalk_170725_00137_TA`` → ``3 · VOCASET speaker 00137``; a trained model's own name as it is.
    """
    if name in VOCASET_SUBJECTS:
        return f"{k} · VOCASET speaker {name.split('_')[2]}"
    return f"{k} · {name}"


def style_description(k: int, name: str) -> str:
    """The tooltip of condition ``k``: what speaking like this condition means."""
    if name in VOCASET_SUBJECTS:
        return (f"Speak like VOCASET subject {name}: VOCA was trained on 3D scans of this person talking "
                f"and imitates their mouth motion (run_voca.py --condition_idx {k})")
    return f"Speaking style '{name}' of this VOCA model (condition {k}, from its conditions file)"


def read_conditions(prefix: os.PathLike) -> Optional[List[str]]:
    """The names in ``<prefix>.conditions.json``; None when there is no such file.

    Raises
    ------
    ModelFileError
        The file exists but is not JSON of the documented format.
    """
    path = conditions_path(prefix)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"'{path}' is not readable JSON ({exc}); delete it or re-run training") from None
    names = data.get("conditions") if isinstance(data, dict) else None
    if (not isinstance(names, list) or not names
            or not all(isinstance(n, str) and n.strip() for n in names) or data.get("format") != FORMAT):
        raise ModelFileError(f"'{path}' is not a conditions file ({FORMAT}: a non-empty list of names under "
                             "'conditions'); delete it or re-run training")
    return [n.strip()[:MAX_NAME_LENGTH] for n in names]


def condition_names(prefix: os.PathLike, num_conditions: int) -> List[str]:
    """One display name per condition of the model at ``prefix`` (``num_conditions`` of them).

    Parameters
    ----------
    prefix : checkpoint prefix (``.../gstep_1200.model``) or any of its files
    num_conditions : the model's conditions (``VocaModel.dims.num_conditions``)

    Returns
    -------
    list of str, ``len == num_conditions``: the conditions file's names when it has exactly that many,
    else :func:`fallback_names`.
    """
    try:
        names = read_conditions(prefix)
    except ModelFileError:
        names = None
    if names is None or len(names) != num_conditions:
        return fallback_names(num_conditions)
    return names


def write_conditions(prefix: os.PathLike, names: Sequence[str], condition_by: str = "subject") -> Path:
    """Write ``<prefix>.conditions.json`` atomically (used by training); returns its path.

    Raises
    ------
    InputError
        No names, or an empty name.
    """
    names = [str(n) for n in names]
    if not names or not all(n.strip() for n in names):
        raise InputError(f"condition names must be non-empty, got {names!r}")
    path = conditions_path(prefix)
    text = json.dumps({"format": FORMAT, "version": VERSION, "condition_by": condition_by,
                       "conditions": names}, indent=1, ensure_ascii=False)
    from .. import outputs
    outputs.write_exact(path, lambda temp: Path(temp).write_text(text + "\n", "utf-8"))   # temporary + rename
    return path
