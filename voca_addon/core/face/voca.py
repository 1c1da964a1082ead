"""The VOCA network (speech encoder + linear expression decoder) in numpy, inference only.

Follows the official graph (TimoBolkart/voca, release ``gstep_52280``) operation by operation; see
``docs/engine.md`` and ``../shared/docs/voca.md``. Parameter names are the checkpoint's own.

Contract: numpy only; float32 arithmetic like TensorFlow. Variants (number of conditions, encoder
size factor, code size, decoder scope) are inferred from tensor shapes, never configured.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Sequence, Union

import numpy as np

from ..errors import InputError, ModelFileError

WINDOW = 16            # audio frames per VOCA window (60 fps frames of DeepSpeech logits)
NUM_FEATURES = 29      # DeepSpeech classes per frame
BN_EPSILON = 1.001e-5  # the official graph's FusedBatchNorm epsilon (VOCA asks 1e-5; TF 1.x raises it)
NUM_CONVS = 4
ENCODER = "VOCA/SpeechEncoder"
DECODER_SCOPES = ("VOCA/FlameExpressionLayer", "VOCA/ExpressionLayer")  # release, code default

# The 8 VOCASET training subjects, in condition order (run_voca.py --condition_idx 1..8).
VOCASET_SUBJECTS = (
    "FaceTalk_170728_03272_TA", "FaceTalk_170904_00128_TA", "FaceTalk_170725_00137_TA",
    "FaceTalk_170915_00223_TA", "FaceTalk_170811_03274_TA", "FaceTalk_170913_03279_TA",
    "FaceTalk_170904_03276_TA", "FaceTalk_170912_03278_TA",
)


def weight_names(decoder_scope: str = DECODER_SCOPES[0]) -> list:
    """The 18 tensor names VOCA inference needs."""
    names = [f"{ENCODER}/batch_norm/{p}" for p in ("beta", "gamma", "moving_mean", "moving_variance")]
    for layer in [f"conv{i}" for i in range(1, NUM_CONVS + 1)] + ["fc1", "fc2"]:
        names += [f"{ENCODER}/{layer}/weights", f"{ENCODER}/{layer}/biases"]
    names += [f"{decoder_scope}/expression_offset/weights", f"{decoder_scope}/expression_offset/biases"]
    return names


@dataclass(frozen=True)
class VocaDims:
    """Model dimensions inferred from the checkpoint."""
    num_conditions: int
    size_factor: int
    code_dim: int
    num_vertices: int
    decoder_scope: str


@dataclass(frozen=True)
class VocaModel:
    """VOCA's 18 inference tensors (float32, names as in the checkpoint) and their dimensions."""
    params: Mapping[str, np.ndarray]
    dims: VocaDims

    @property
    def decoder_weights(self) -> np.ndarray:
        """float32 [D, V*3]: row k is the displacement of code dimension k."""
        return self.params[f"{self.dims.decoder_scope}/expression_offset/weights"]

    @property
    def decoder_bias(self) -> np.ndarray:
        """float32 [V*3]."""
        return self.params[f"{self.dims.decoder_scope}/expression_offset/biases"]


def find_decoder_scope(names) -> str:
    for scope in DECODER_SCOPES:
        if f"{scope}/expression_offset/weights" in names:
            return scope
    raise ModelFileError(
        "the checkpoint has no VOCA decoder (expected a tensor named "
        f"'{DECODER_SCOPES[0]}/expression_offset/weights' or '{DECODER_SCOPES[1]}/...'): "
        "is this a VOCA checkpoint (gstep_52280.model.*)?")


def infer_dims(shapes: Mapping[str, Sequence[int]]) -> VocaDims:
    """Infer the variant from tensor shapes; refuse anything that is not a consistent VOCA model."""
    scope = find_decoder_scope(shapes)
    missing = [n for n in weight_names(scope) if n not in shapes]
    if missing:
        raise ModelFileError(f"the VOCA checkpoint lacks {len(missing)} tensors, e.g. '{missing[0]}'")
    s = {n: tuple(int(x) for x in shapes[n]) for n in weight_names(scope)}
    conv1 = s[f"{ENCODER}/conv1/weights"]
    conditions = conv1[2] - NUM_FEATURES if len(conv1) == 4 else 0
    factor = conv1[3] // 32 if len(conv1) == 4 else 0
    code = s[f"{ENCODER}/fc2/weights"][-1] if len(s[f"{ENCODER}/fc2/weights"]) == 2 else 0
    dec = s[f"{scope}/expression_offset/weights"]
    verts = dec[1] // 3 if len(dec) == 2 else 0
    dims = VocaDims(conditions, factor, code, verts, scope)
    if conditions < 1 or factor < 1 or code < 1 or verts < 1 or dec[1] % 3:
        raise ModelFileError(f"unexpected VOCA tensor shapes (conv1 {conv1}, decoder {dec})")
    expected = _expected_shapes(dims)
    for name, shape in expected.items():
        if s[name] != shape:
            raise ModelFileError(
                f"tensor '{name}' has shape {list(s[name])}, expected {list(shape)} for a VOCA model "
                f"with {conditions} conditions, size factor {factor}, code size {code}")
    return dims


def _expected_shapes(d: VocaDims) -> Dict[str, tuple]:
    f, c = d.size_factor, d.num_conditions
    chans = [NUM_FEATURES + c, 32 * f, 32 * f, 64 * f, 64 * f]
    out = {f"{ENCODER}/batch_norm/{p}": (1,) for p in ("beta", "gamma", "moving_mean", "moving_variance")}
    for i in range(NUM_CONVS):
        out[f"{ENCODER}/conv{i + 1}/weights"] = (3, 1, chans[i], chans[i + 1])
        out[f"{ENCODER}/conv{i + 1}/biases"] = (chans[i + 1],)
    out[f"{ENCODER}/fc1/weights"] = (chans[-1] + c, 128)
    out[f"{ENCODER}/fc1/biases"] = (128,)
    out[f"{ENCODER}/fc2/weights"] = (128, d.code_dim)
    out[f"{ENCODER}/fc2/biases"] = (d.code_dim,)
    out[f"{d.decoder_scope}/expression_offset/weights"] = (d.code_dim, 3 * d.num_vertices)
    out[f"{d.decoder_scope}/expression_offset/biases"] = (3 * d.num_vertices,)
    return out


def model_from_tensors(tensors: Mapping[str, np.ndarray]) -> VocaModel:
    """Build a :class:`VocaModel` from checkpoint tensors (extra tensors, e.g. Adam slots, ignored)."""
    dims = infer_dims({n: np.shape(a) for n, a in tensors.items()})
    params = {n: np.ascontiguousarray(tensors[n], dtype=np.float32) for n in weight_names(dims.decoder_scope)}
    return VocaModel(params, dims)


def condition_vector(model: VocaModel, condition: Union[int, Mapping[int, float]]) -> np.ndarray:
    """The condition input: a one-hot for a 1-based index, or a normalised blend.

    Parameters
    ----------
    condition : int (1-based, like ``run_voca.py --condition_idx``) or {1-based index: weight}
    Returns float32 [C].
    """
    c = model.dims.num_conditions
    items = {condition: 1.0} if isinstance(condition, (int, np.integer)) else dict(condition)
    vec = np.zeros(c, np.float32)
    for idx, w in items.items():
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)) or not 1 <= idx <= c:
            raise InputError(f"condition {idx!r} is out of range: this model has conditions 1..{c}")
        if not np.isfinite(w) or w < 0:
            raise InputError(f"style weight {w!r} for condition {idx} must be a finite number ≥ 0")
        vec[idx - 1] += w
    if not vec.sum() > 0:
        raise InputError("the style blend has no positive weight: give at least one condition a weight > 0")
    return vec / vec.sum()


def _conv_time(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Conv2D 3×1, stride 2×1, TF 'SAME' padding on an even time axis, + bias, ReLU.

    x: float32 [N, H, Cin] (H even) → [N, H/2, Cout]. TF pads 0 rows before and 1 after.
    """
    n, h, cin = x.shape
    xp = np.concatenate([x, np.zeros((n, 1, cin), x.dtype)], axis=1)       # [N, H+1, Cin]
    taps = np.stack([xp[:, k:k + h:2] for k in range(3)], axis=2)          # [N, H/2, 3, Cin]
    y = taps.reshape(n, h // 2, 3 * cin) @ w.reshape(3 * cin, -1) + b     # [N, H/2, Cout]
    return np.maximum(y, 0, out=y)


def encode(model: VocaModel, windows: np.ndarray, condition) -> np.ndarray:
    """Speech encoder: DeepSpeech windows → expression code.

    Parameters
    ----------
    windows : float [N, 16, 29]
    condition : see :func:`condition_vector`
    Returns float32 [N, D].
    """
    p, e = model.params, ENCODER
    x = np.asarray(windows, np.float32)
    if x.ndim != 3 or x.shape[1:] != (WINDOW, NUM_FEATURES):
        raise InputError(f"speech windows must be [frames, {WINDOW}, {NUM_FEATURES}], got {x.shape}")
    n = x.shape[0]
    cond = np.broadcast_to(condition_vector(model, condition), (n, model.dims.num_conditions))
    # FusedBatchNorm (inference): x·s + (beta − mean·s), s = gamma / sqrt(var + eps), in that order.
    s = p[f"{e}/batch_norm/gamma"] / np.sqrt(p[f"{e}/batch_norm/moving_variance"] + np.float32(BN_EPSILON))
    x = x * s + (p[f"{e}/batch_norm/beta"] - p[f"{e}/batch_norm/moving_mean"] * s)  # [N, 16, 29]
    h = np.concatenate([x, np.broadcast_to(cond[:, None, :], (n, WINDOW, cond.shape[1]))], axis=2)
    for i in range(1, NUM_CONVS + 1):                                       # 16 → 8 → 4 → 2 → 1
        h = _conv_time(h, p[f"{e}/conv{i}/weights"], p[f"{e}/conv{i}/biases"])
    h = np.concatenate([h.reshape(n, -1), cond], axis=1)                    # [N, 64f + C]
    h = np.tanh(h @ p[f"{e}/fc1/weights"] + p[f"{e}/fc1/biases"])           # [N, 128]
    return h @ p[f"{e}/fc2/weights"] + p[f"{e}/fc2/biases"]                 # [N, D]


def decode(model: VocaModel, code: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Decoder: template + code·W + b, float32 [N, V, 3]."""
    offsets = code @ model.decoder_weights + model.decoder_bias              # [N, V*3]
    return np.asarray(template, np.float32)[None] + offsets.reshape(len(code), -1, 3)
