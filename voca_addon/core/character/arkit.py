"""ARKit's 52 face blendshape names, matching them on a rig's own key names, and curve files.

Names: Apple ``ARFaceAnchor.BlendShapeLocation`` (camelCase). Their order here is Live Link Face's
CSV column order (Epic Games' iOS app): ``Timecode, BlendShapeCount``, the 52 shapes in PascalCase,
then 9 head/eye rotations (``HeadYaw`` … ``RightEyeRoll``); ``BlendShapeCount`` is 61 and the timecode
``HH:MM:SS:FF.mmm`` counts frames FF at the take's rate with a fractional part. We write the
rotations as 0 (speech drives no head or eye rotation).

A rig's key name matches an ARKit name when, ignoring case, separators (``_ - . space``) and a prefix
ending in ``.``/``:``/``|`` (``blendShape1.jawOpen``, ``Face:JawOpen``), plus an optional leading
``arkit``/``bs``/``blendshape``, it equals the ARKit name, with ``_L``/``_R`` accepted for
``Left``/``Right`` (``Mouth_Smile_L``).

Contract: stdlib + numpy; pure functions; files written atomically (:mod:`voca_addon.core.outputs`).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Dict, Iterable, Sequence

import numpy as np

from ..outputs import write_exact

ARKIT_NAMES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward", "jawRight",
    "jawLeft", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
    "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft", "browDownRight",
    "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut")
LIVE_LINK_ROTATIONS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                       "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
_PREFIXES = ("arkit", "blendshape", "bs")
_CANONICAL = {name.lower(): name for name in ARKIT_NAMES}


def canonical_name(key_name: str):
    """The ARKit name a rig's key name stands for, or None."""
    text = re.split(r"[.:|]", key_name)[-1]
    words = [w for w in re.split(r"[_\-\s]+", text) if w]
    if words and words[-1].lower() in ("l", "r"):
        words[-1] = "Left" if words[-1].lower() == "l" else "Right"
    flat = "".join(words).lower()
    for prefix in ("",) + _PREFIXES:
        if flat.startswith(prefix) and flat[len(prefix):] in _CANONICAL:
            return _CANONICAL[flat[len(prefix):]]
    return None


def match_arkit(key_names: Iterable[str]) -> Dict[str, str]:
    """{rig key name: ARKit name} for the keys that are ARKit shapes (first rig key wins per name)."""
    found: Dict[str, str] = {}
    taken = set()
    for name in key_names:
        arkit = canonical_name(name)
        if arkit and arkit not in taken:
            found[name], _ = arkit, taken.add(arkit)
    return found


def _timecode(frame: int, fps: float) -> str:
    """``HH:MM:SS:FF.mmm`` of ``frame`` at ``fps`` (FF: frame within the second, .mmm its fraction)."""
    whole = int(np.floor(frame / fps + 1e-9))
    sub = frame - whole * fps                                            # frames into the second
    ff = int(np.floor(sub + 1e-6))
    h, m, s = whole // 3600, whole // 60 % 60, whole % 60
    return f"{h:02d}:{m:02d}:{s:02d}:{ff:02d}.{int(round((sub - ff) * 1000)) % 1000:03d}"


def _atomic_write(path, text: str) -> None:
    """``text`` to ``path`` through the project's writer (:func:`voca_addon.core.outputs.write_exact`: a
    hidden ``.NAME.….part.EXT`` beside it, renamed when complete; created by ``open``, so the usual
    permissions, not a private temporary file's 0600)."""
    def write(temp) -> None:
        with open(temp, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
    write_exact(Path(os.path.abspath(os.fspath(path))), write)


def write_live_link_csv(path, weights: np.ndarray, names: Sequence[str], fps: float) -> None:
    """Write curves as a Live Link Face CSV (52 ARKit columns + 9 rotations; missing shapes are 0).

    Parameters
    ----------
    weights : float [F, K]   per-frame weights of the keys ``names`` (ARKit names, any spelling)
    fps : float              frame rate of the rows
    """
    columns = np.zeros((len(weights), len(ARKIT_NAMES) + len(LIVE_LINK_ROTATIONS)))
    index = {n: i for i, n in enumerate(ARKIT_NAMES)}
    for k, name in enumerate(names):
        arkit = canonical_name(name)
        if arkit is not None:
            columns[:, index[arkit]] = weights[:, k]
    header = ["Timecode", "BlendShapeCount"] + [n[0].upper() + n[1:] for n in ARKIT_NAMES] + list(LIVE_LINK_ROTATIONS)
    lines = [",".join(header)]
    count = len(ARKIT_NAMES) + len(LIVE_LINK_ROTATIONS)
    for f, row in enumerate(columns):
        lines.append(f"{_timecode(f, fps)},{count}," + ",".join(f"{v:.6f}" for v in row))
    _atomic_write(path, "\n".join(lines) + "\n")


def write_curves_json(path, weights: np.ndarray, names: Sequence[str], fps: float, report: dict = None) -> None:
    """Write ``{"fps", "names", "weights": [frames][keys], "report"}`` as JSON (a report figure that is not
    finite, e.g. the share explained of a still clip, is written as null: strict JSON has no NaN)."""
    report = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in (report or {}).items()}
    data = {"fps": float(fps), "names": list(names),
            "weights": np.round(np.asarray(weights, np.float64), 6).tolist(), "report": report}
    _atomic_write(path, json.dumps(data, indent=1))
