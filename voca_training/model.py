"""VOCA in TensorFlow 2 for training: plain ``tf.Variable``s named like the release, ``tf.function`` steps.

The forward pass is the official graph's (see ``voca_addon/core/face/voca.py`` and ``tests/reference/tf_voca.py``):
batch norm over the single feature channel (epsilon 1.001e-5, the official graph's value), the one-hot
condition tiled over the 16 time rows and concatenated after the 29 features, four 3×1 stride-2 'SAME'
convolutions with ReLU, flatten ‖ condition, fc1 (tanh), fc2 (the code), decoder ``code·W + b``.

Training follows VOCA's graph, facts read from the release's ``.meta``:

* batch norm in training mode normalises with the batch's moments and updates the moving statistics in
  the same step: ``moving -= (moving - batch) · (1 - momentum)``, momentum 0.9 (the graph's
  ``AssignMovingAvg/decay`` constant is 0.1), the variance with Bessel's correction (TF's fused kernel);
  inference uses the moving statistics;
* initialisers (``encoder_init = voca``): conv weights and biases truncated normal σ 0.02, fc weights
  truncated normal σ 0.1, fc biases 0, batch norm β 0 γ 1, moving mean 0 variance 1, decoder weights =
  the initial basis, biases 0. With these the encoder's output barely depends on the audio at first
  (four σ-0.02 layers shrink the input's variation ~10⁴-fold), so learning starts only after thousands
  of steps (VOCA trained 52,280). ``encoder_init = scaled`` (ours) draws the encoder's weights with
  σ = √(gain / fan-in) (He for the ReLU convolutions, LeCun for fc1 / fc2, truncated normal) and zero
  conv biases, which learns within a few hundred steps; everything else is the same;
* loss (``utils/voca_model.py``, ``utils/losses.py``): mean over frames and vertices of the squared (or
  absolute) xyz error summed over xyz; velocity = that loss on (last − second-last frame) of each
  window, acceleration on (last − 2·second-last + third-last), each times its weight; vertex regulariser
  = weight · mean over frames and vertices of Σ|offset|;
* Adam exactly as TF 1's ``AdamOptimizer`` (β2 0.999, ε 1e-8, ``lr_t = lr·√(1−β2^t)/(1−β1^t)``), its
  state in the release's names: ``VOCA/VOCA/<weight>/Adam``, ``Adam_1``, ``VOCA/beta1_power`` (starts at
  β1), ``VOCA/beta2_power``, ``VOCA/global_step`` (int32). The moving statistics are not trainable, so a
  release-shape model has the release's 53 tensors.

Contract: imported only by training (never by Blender or ``voca_addon``). Inputs are numpy; the
condition enters as a float matrix [N, C] (a one-hot, or a blend).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping

import numpy as np
import tensorflow as tf

from voca_addon.core.face.voca import BN_EPSILON, ENCODER, NUM_CONVS, NUM_FEATURES, WINDOW, VocaDims, weight_names

BN_MOMENTUM = 0.9            # official graph: AssignMovingAvg decay constant 0.1 = 1 − momentum
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8
CONV_STDDEV = 0.02           # VOCA's conv2d initialiser (weights and biases)
FC_STDDEV = 0.1              # VOCA's fc_layer initialiser (weights; biases 0)
TRUNCATE = 2.0               # truncated normal: redraw beyond 2 σ (TF's rule)
TRUNCATED_STD = 0.87962566103423978   # std of a unit normal truncated at ±2 σ (Keras' correction)
RELU_GAIN = 2.0              # He: variance 2 / fan-in before a ReLU; LeCun (gain 1) before tanh / linear
GLOBAL_STEP = "VOCA/global_step"
BETA1_POWER = "VOCA/beta1_power"
BETA2_POWER = "VOCA/beta2_power"
MOVING = ("moving_mean", "moving_variance")


def trainable_names(scope: str) -> list:
    """The 16 weights Adam updates (all but the batch-norm moving statistics)."""
    return [n for n in weight_names(scope) if n.rsplit("/", 1)[-1] not in MOVING]


def slot_names(name: str) -> tuple:
    """Adam's slots of one weight, as TF 1 named them under the ``VOCA`` scope."""
    return f"VOCA/{name}/Adam", f"VOCA/{name}/Adam_1"


def state_names(scope: str) -> list:
    """Every tensor of a training checkpoint (53 for any variant)."""
    names = weight_names(scope) + [s for n in trainable_names(scope) for s in slot_names(n)]
    return names + [GLOBAL_STEP, BETA1_POWER, BETA2_POWER]


def _truncated(rng: np.random.Generator, shape, std: float) -> np.ndarray:
    x = rng.standard_normal(shape)
    bad = np.abs(x) > TRUNCATE
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > TRUNCATE
    return (x * std).astype(np.float32)


def _std(scheme: str, shape, voca_std: float, gain: float = 1.0) -> float:
    """σ of a weight's truncated normal: VOCA's fixed value, or √(gain / fan-in) corrected for truncation."""
    if scheme == "voca":
        return voca_std
    return float(np.sqrt(gain / np.prod(shape[:-1])) / TRUNCATED_STD)


def initial_weights(dims: VocaDims, basis: np.ndarray, seed: int, scheme: str = "voca") -> Dict[str, np.ndarray]:
    """Initial values of the 18 weights (see the module docstring); ``basis`` float32 [D, 3V].

    ``scheme``: ``"voca"`` (VOCA's initialisers) or ``"scaled"`` (fan-in scaled encoder weights).
    """
    rng = np.random.default_rng((seed, 7))
    f, c, e = dims.size_factor, dims.num_conditions, ENCODER
    chans = [NUM_FEATURES + c, 32 * f, 32 * f, 64 * f, 64 * f]
    w = {f"{e}/batch_norm/beta": np.zeros(1, np.float32), f"{e}/batch_norm/gamma": np.ones(1, np.float32),
         f"{e}/batch_norm/moving_mean": np.zeros(1, np.float32),
         f"{e}/batch_norm/moving_variance": np.ones(1, np.float32)}
    for i in range(NUM_CONVS):
        shape = (3, 1, chans[i], chans[i + 1])
        w[f"{e}/conv{i + 1}/weights"] = _truncated(rng, shape, _std(scheme, shape, CONV_STDDEV, RELU_GAIN))
        bias = _truncated(rng, (chans[i + 1],), CONV_STDDEV)
        w[f"{e}/conv{i + 1}/biases"] = bias if scheme == "voca" else np.zeros_like(bias)
    shape = (chans[-1] + c, 128)
    w[f"{e}/fc1/weights"] = _truncated(rng, shape, _std(scheme, shape, FC_STDDEV))
    w[f"{e}/fc1/biases"] = np.zeros(128, np.float32)
    shape = (128, dims.code_dim)
    w[f"{e}/fc2/weights"] = _truncated(rng, shape, _std(scheme, shape, FC_STDDEV))
    w[f"{e}/fc2/biases"] = np.zeros(dims.code_dim, np.float32)
    scope = dims.decoder_scope
    w[f"{scope}/expression_offset/weights"] = np.asarray(basis, np.float32).reshape(dims.code_dim, -1)
    w[f"{scope}/expression_offset/biases"] = np.zeros(3 * dims.num_vertices, np.float32)
    return w


@dataclass(frozen=True)
class LossSettings:
    """The loss terms' settings (from the config)."""
    consecutive: int = 2
    velocity: float = 10.0
    acceleration: float = 0.0
    regularizer: float = 0.0
    absolute: bool = False


class VocaTF:
    """The VOCA network and its Adam state as TF 2 variables keyed by checkpoint name."""

    def __init__(self, dims: VocaDims, weights: Mapping[str, np.ndarray], loss: LossSettings, beta1: float):
        self.dims, self.loss, self.beta1 = dims, loss, float(beta1)
        self.names = weight_names(dims.decoder_scope)
        self.trainable = trainable_names(dims.decoder_scope)
        self.vars = {n: tf.Variable(np.asarray(weights[n], np.float32), trainable=n in self.trainable,
                                    name=n.replace("/", "__")) for n in self.names}
        self.slots = {n: tuple(tf.Variable(tf.zeros_like(self.vars[n]), trainable=False) for _ in range(2))
                      for n in self.trainable}
        self.global_step = tf.Variable(0, dtype=tf.int32, trainable=False)
        self.beta1_power = tf.Variable(self.beta1, dtype=tf.float32, trainable=False)
        self.beta2_power = tf.Variable(ADAM_BETA2, dtype=tf.float32, trainable=False)
        c, v = dims.num_conditions, dims.num_vertices
        spec = [tf.TensorSpec([None, WINDOW, NUM_FEATURES], tf.float32), tf.TensorSpec([None, c], tf.float32)]
        target = tf.TensorSpec([None, v, 3], tf.float32)
        self.train_step = tf.function(self._train_step, input_signature=spec + [target, tf.TensorSpec([], tf.float32)])
        self.eval_losses = tf.function(self._eval_losses, input_signature=spec + [target])
        self.offsets = tf.function(lambda x, cond: self._offsets(x, cond, False), input_signature=spec)

    # --- state ----------------------------------------------------------------------------------
    def weights(self) -> Dict[str, np.ndarray]:
        """The 18 inference weights (float32 numpy)."""
        return {n: self.vars[n].numpy() for n in self.names}

    def state(self) -> Dict[str, np.ndarray]:
        """Every tensor of a training checkpoint, under the release's names (see :func:`state_names`)."""
        out = self.weights()
        for n, (m, v) in self.slots.items():
            out[slot_names(n)[0]], out[slot_names(n)[1]] = m.numpy(), v.numpy()
        out[GLOBAL_STEP] = np.asarray(self.global_step.numpy(), np.int32)
        out[BETA1_POWER] = np.asarray(self.beta1_power.numpy(), np.float32)
        out[BETA2_POWER] = np.asarray(self.beta2_power.numpy(), np.float32)
        return out

    def load_state(self, tensors: Mapping[str, np.ndarray]) -> None:
        """Restore Adam's slots, the step and the β powers (the weights are given to the constructor)."""
        for n, (m, v) in self.slots.items():
            m.assign(tensors[slot_names(n)[0]])
            v.assign(tensors[slot_names(n)[1]])
        self.global_step.assign(int(tensors[GLOBAL_STEP]))
        self.beta1_power.assign(float(tensors[BETA1_POWER]))
        self.beta2_power.assign(float(tensors[BETA2_POWER]))

    # --- network --------------------------------------------------------------------------------
    def _batch_norm(self, x, training: bool):
        p, e = self.vars, ENCODER
        gamma, beta = p[f"{e}/batch_norm/gamma"], p[f"{e}/batch_norm/beta"]
        mean_var, var_var = p[f"{e}/batch_norm/moving_mean"], p[f"{e}/batch_norm/moving_variance"]
        if not training:
            return tf.nn.batch_normalization(x, mean_var, var_var, beta, gamma, BN_EPSILON)
        mean, var = tf.nn.moments(x, axes=[0, 1, 2])                        # [1] over N, 16, 29
        count = tf.cast(tf.size(x), tf.float32)
        mean_var.assign_sub((mean_var - mean) * (1.0 - BN_MOMENTUM))
        var_var.assign_sub((var_var - var * count / tf.maximum(count - 1.0, 1.0)) * (1.0 - BN_MOMENTUM))
        return tf.nn.batch_normalization(x, mean, var, beta, gamma, BN_EPSILON)

    def _encode(self, windows, cond, training: bool):
        p, e = self.vars, ENCODER
        x = self._batch_norm(windows[..., None], training)                   # [N, 16, 29, 1]
        x = tf.reshape(x, [-1, WINDOW, 1, NUM_FEATURES])                     # time as height
        tiled = tf.tile(cond[:, None, None, :], [1, WINDOW, 1, 1])           # [N, 16, 1, C]
        h = tf.concat([x, tiled], axis=-1)                                   # [N, 16, 1, 29 + C]
        for i in range(1, NUM_CONVS + 1):                                    # 16 → 8 → 4 → 2 → 1
            h = tf.nn.conv2d(h, p[f"{e}/conv{i}/weights"], strides=[1, 2, 1, 1], padding="SAME")
            h = tf.nn.relu(tf.nn.bias_add(h, p[f"{e}/conv{i}/biases"]))
        h = tf.concat([tf.reshape(h, [tf.shape(h)[0], -1]), cond], axis=1)  # [N, 64f + C]
        h = tf.tanh(tf.matmul(h, p[f"{e}/fc1/weights"]) + p[f"{e}/fc1/biases"])  # [N, 128]
        return tf.matmul(h, p[f"{e}/fc2/weights"]) + p[f"{e}/fc2/biases"]   # [N, D]

    def _offsets(self, windows, cond, training: bool):
        scope = self.dims.decoder_scope
        code = self._encode(windows, cond, training)
        out = tf.matmul(code, self.vars[f"{scope}/expression_offset/weights"])
        out = out + self.vars[f"{scope}/expression_offset/biases"]          # [N, 3V]
        return tf.reshape(out, [-1, self.dims.num_vertices, 3])

    def predict(self, windows: np.ndarray, cond: np.ndarray, template: np.ndarray) -> np.ndarray:
        """Vertices float32 [N, V, 3] (inference mode): template + offsets; ``cond`` float [N, C]."""
        offsets = self.offsets(np.asarray(windows, np.float32), np.asarray(cond, np.float32)).numpy()
        return np.asarray(template, np.float32)[None] + offsets

    # --- losses and the Adam step ---------------------------------------------------------------
    def _error(self, pred, real):
        diff = tf.abs(pred - real) if self.loss.absolute else tf.square(pred - real)
        return tf.reduce_mean(tf.reduce_sum(diff, axis=-1))

    def _losses(self, pred, target) -> Dict[str, tf.Tensor]:
        k, s = self.loss.consecutive, self.loss
        v = self.dims.num_vertices
        zero = tf.constant(0.0)
        out = {"reconstruction": self._error(pred, target), "velocity": zero, "acceleration": zero,
               "regularizer": zero}
        frames_p, frames_t = tf.reshape(pred, [-1, k, v, 3]), tf.reshape(target, [-1, k, v, 3])
        if s.velocity > 0:
            out["velocity"] = s.velocity * self._error(frames_p[:, -1] - frames_p[:, -2],
                                                       frames_t[:, -1] - frames_t[:, -2])
        if s.acceleration > 0:
            acc = lambda f: f[:, -1] - 2.0 * f[:, -2] + f[:, -3]             # noqa: E731
            out["acceleration"] = s.acceleration * self._error(acc(frames_p), acc(frames_t))
        if s.regularizer > 0:
            out["regularizer"] = s.regularizer * tf.reduce_mean(tf.reduce_sum(tf.abs(pred), axis=-1))
        out["loss"] = out["reconstruction"] + out["velocity"] + out["acceleration"] + out["regularizer"]
        return out

    def _eval_losses(self, windows, cond, target):
        return self._losses(self._offsets(windows, cond, False), target)

    def _train_step(self, windows, cond, target, learning_rate):
        train_vars = [self.vars[n] for n in self.trainable]
        with tf.GradientTape() as tape:
            losses = self._losses(self._offsets(windows, cond, True), target)
        grads = tape.gradient(losses["loss"], train_vars)
        lr_t = learning_rate * tf.sqrt(1.0 - self.beta2_power) / (1.0 - self.beta1_power)
        for name, var, grad in zip(self.trainable, train_vars, grads):
            m, v = self.slots[name]
            m.assign_add((grad - m) * (1.0 - self.beta1))
            v.assign_add((tf.square(grad) - v) * (1.0 - ADAM_BETA2))
            var.assign_sub(lr_t * m / (tf.sqrt(v) + ADAM_EPSILON))
        self.beta1_power.assign(self.beta1_power * self.beta1)
        self.beta2_power.assign(self.beta2_power * ADAM_BETA2)
        self.global_step.assign_add(1)
        return losses
