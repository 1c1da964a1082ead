"""The training run: checks → features → model → Adam steps with validation → checkpoints → summary.

``train(data, deepspeech, out, ...)`` is what ``python -m voca_addon train`` calls. Order of work:

1. read the config (``--config``; on ``--resume`` without one, the run's own ``training_config.ini``),
   check ``--out`` (a folder with a run needs ``--resume``), read the ``--init`` / resume checkpoint's
   shapes, open and check the data folder (:mod:`voca_training.data`) — every refusal happens here,
   before anything is written;
2. speech features for every sequence with the add-on's engine, cached (:mod:`voca_training.batches`);
3. the model (:mod:`voca_training.model`): fresh (``encoder_init``'s initialisers, decoder = initial basis), from
   ``--init`` (its 18 weights; new Adam state, step 0), or resumed (weights, Adam state, step);
4. steps: epoch ``e`` visits every training frame once in a seeded order (``batch_size`` windows of
   ``num_consecutive_frames`` frames per step, ``training frames // batch_size`` steps per epoch, as VOCA);
   learning rate × ``decay_rate`` per epoch when ``decay_rate < 1``; at each epoch's end the validation
   loss and mean vertex error on a fixed set of ``batch_size`` validation windows (conditioned on the
   sequence's own condition, or averaged over all conditions when it has none, as VOCA); a checkpoint
   every ``save_every_epochs`` epochs and at the end.

``--steps N`` runs N more steps; without it the run goes on to ``epoch_num`` epochs in all.

Contract: TensorFlow is imported only in step 3 (so bad inputs are refused quickly and without it).
Progress goes to ``stream`` (stderr), the summary to ``summary_stream`` (stdout).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, TextIO

import numpy as np

from voca_addon.core.errors import InputError
from voca_addon.core.models.modelfiles import resolve_deepspeech
from voca_addon.core.face.voca import VocaDims

from . import batches, checkpoint, data
from .config import TrainingConfig, load_config, to_ini
from .errors import ConfigError
from .progress import ProgressBar, TrainingLog, format_duration

CONFIG_FILE = "training_config.ini"
LOG_FILE = "training_log.csv"
SUMMARY_WINDOW = 10          # steps averaged for the first / last loss in the summary
MM = 1000.0                  # millimetres per metre


@dataclass
class Plan:
    """Everything checked before the first write."""
    cfg: TrainingConfig
    dataset: data.Dataset
    out: Path
    dims: VocaDims
    init_weights: Optional[Dict[str, np.ndarray]]     # --init
    resume_from: Optional[Path]                       # --resume
    start_step: int
    end_step: int
    steps_per_epoch: int


@dataclass
class TrainingResult:
    """What a run did (the summary's figures); ``model`` is the trained :class:`~.model.VocaTF`."""
    prefix: Path
    conditions: tuple
    start_step: int
    end_step: int
    steps_per_epoch: int
    seconds: float
    losses: np.ndarray                       # float [steps] training loss of this run's steps
    validation: List[dict]                   # per epoch: step, epoch, loss, error_mm
    model: object = dataclasses.field(repr=False, default=None)

    @property
    def steps_per_second(self) -> float:
        return (self.end_step - self.start_step) / self.seconds if self.seconds > 0 else float("nan")


# --------------------------------------------------------------------------------------------------
# 1. checks
# --------------------------------------------------------------------------------------------------
def _read_config(config, out: Path, resume: bool) -> TrainingConfig:
    if config is None and resume and (out / CONFIG_FILE).is_file():
        return load_config(out / CONFIG_FILE)
    return load_config(config)


def _check_out(out: Path, resume: bool) -> Optional[Path]:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out '{out}' is a file: give a folder for the checkpoints")
    found = checkpoint.latest(out)
    if resume:
        if found is None:
            raise InputError(f"--resume: '{out}' holds no checkpoint (gstep_<step>.model.index) to continue; "
                             "leave --resume out to start a new run there")
        return found
    if found is not None or (out / LOG_FILE).is_file():
        raise InputError(f"'{out}' already holds a training run ({found.name if found else LOG_FILE}): pass "
                         "--resume to continue it, or choose another --out")
    return None


def _check_dims(dims: VocaDims, wanted: VocaDims, what: str) -> None:
    pairs = [("num_conditions", "conditions (from the data)"), ("size_factor", "speech_encoder_size_factor"),
             ("code_dim", "expression_dim"), ("num_vertices", "num_vertices")]
    for attr, key in pairs:
        if getattr(dims, attr) != getattr(wanted, attr):
            raise InputError(f"{what} has {attr.replace('_', ' ')} {getattr(dims, attr)} but this run has "
                             f"{getattr(wanted, attr)} ({key}): make the config and data match the checkpoint")


def _step_range(cfg: TrainingConfig, start: int, steps: Optional[int], train_frames: int):
    per_epoch = train_frames // cfg.batch_size
    if per_epoch < 1:
        raise InputError(f"the training split has {train_frames} frames, fewer than batch_size = {cfg.batch_size}: "
                         "lower batch_size or add training sequences")
    if steps is not None and steps < 1:
        raise InputError(f"--steps must be >= 1, got {steps}")
    end = start + steps if steps is not None else cfg.epoch_num * per_epoch
    if end <= start:
        raise InputError(f"the run is already at step {start} = {start / per_epoch:.1f} epochs (epoch_num = "
                         f"{cfg.epoch_num}): raise epoch_num or pass --steps N to train more")
    return end, per_epoch


def plan_run(data_dir, deepspeech, out, config=None, steps=None, init=None, resume=False) -> Plan:
    """Step 1: every check; nothing is written."""
    out = Path(out).expanduser()
    if init and resume:
        raise InputError("--init starts a new run from a checkpoint's weights; --resume continues a run: give one")
    cfg = _read_config(config, out, resume)
    resume_from = _check_out(out, resume)
    resolve_deepspeech(deepspeech)
    basis = cfg.expression_basis_fname
    if cfg.init_expression and basis and not init and not resume and not Path(basis).is_file():
        raise ConfigError(f"[Input Output] expression_basis_fname: '{basis}' was not found; give VOCA's "
                          "init_expression_basis.npy there, or leave it empty to start from a PCA of the data")
    init_weights, init_dims = checkpoint.load_weights(init) if init else (None, None)
    dataset = data.open_dataset(data_dir, cfg)
    dims = VocaDims(len(dataset.conditions), cfg.speech_encoder_size_factor, cfg.expression_dim,
                    dataset.num_vertices, cfg.decoder_scope_path)
    start = 0
    if init_dims is not None:
        _check_dims(init_dims, dims, f"--init checkpoint '{init}'")
        init_weights = checkpoint.rename_decoder(init_weights, dims.decoder_scope)
    if resume_from is not None:
        found = checkpoint.read_dims(resume_from)
        _check_dims(found, dims, f"the checkpoint {resume_from}")
        dims = dataclasses.replace(dims, decoder_scope=found.decoder_scope)
        start = int(checkpoint.load_training_state(resume_from, ["VOCA/global_step"])["VOCA/global_step"])
    train_frames = sum(s.num_frames for s in dataset.train)
    end, per_epoch = _step_range(cfg, start, steps, train_frames)
    return Plan(cfg, dataset, out, dims, init_weights, resume_from, start, end, per_epoch)


# --------------------------------------------------------------------------------------------------
# 3. the model
# --------------------------------------------------------------------------------------------------
def _set_threads(threads: int) -> None:
    import tensorflow as tf
    if threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass                              # TensorFlow already started in this process: keep its setting


def build_model(plan: Plan, sampler: batches.WindowSampler):
    """Step 3: a fresh, ``--init`` or resumed :class:`~.model.VocaTF`."""
    from . import model as tfmodel
    cfg = plan.cfg
    loss = tfmodel.LossSettings(cfg.num_consecutive_frames, cfg.velocity_weight, cfg.acceleration_weight,
                                cfg.verts_regularizer_weight, cfg.absolute_reconstruction_loss)
    if plan.resume_from is not None:
        state = checkpoint.load_training_state(plan.resume_from, tfmodel.state_names(plan.dims.decoder_scope))
        net = tfmodel.VocaTF(plan.dims, state, loss, cfg.adam_beta1_value)
        net.load_state(state)
        return net
    weights = plan.init_weights
    if weights is None:
        basis = batches.initial_basis(cfg.expression_basis_fname, plan.dims.code_dim, plan.dims.num_vertices,
                                      sampler, cfg.random_seed, cfg.init_expression)
        weights = tfmodel.initial_weights(plan.dims, basis, cfg.random_seed, cfg.encoder_init)
    return tfmodel.VocaTF(plan.dims, weights, loss, cfg.adam_beta1_value)


# --------------------------------------------------------------------------------------------------
# 4. steps
# --------------------------------------------------------------------------------------------------
def _one_hot(conditions: np.ndarray, count: int) -> np.ndarray:
    return np.eye(count, dtype=np.float32)[conditions]


def learning_rate(cfg: TrainingConfig, step: int, train_frames: int) -> float:
    """VOCA's schedule: staircase decay by ``decay_rate`` every ``train_frames / batch_size`` steps."""
    if cfg.decay_rate >= 1:
        return cfg.learning_rate
    return cfg.learning_rate * cfg.decay_rate ** np.floor(step / (train_frames / cfg.batch_size))


def validate(net, sampler: batches.WindowSampler, ids: np.ndarray, num_conditions: int) -> dict:
    """Validation loss and mean vertex error (mm), inference mode; VOCA's averaging over conditions."""
    batch = sampler.gather(ids)
    known = batch.conditions >= 0
    choices = [None] if known.all() else range(num_conditions)
    losses, errors = [], []
    for c in choices:
        cond = np.where(known, batch.conditions, c if c is not None else 0).astype(np.int64)
        onehot = _one_hot(cond, num_conditions)
        losses.append(float(net.eval_losses(batch.windows, onehot, batch.targets)["loss"]))
        pred = net.offsets(batch.windows, onehot).numpy()
        errors.append(float(np.linalg.norm(pred - batch.targets, axis=-1).mean()) * MM)
    return {"loss": float(np.mean(losses)), "error_mm": float(np.mean(errors))}


def _log_row(step: int, per_epoch: int, losses: dict, lr: float) -> dict:
    row = {k: f"{float(v):.6e}" for k, v in losses.items()}
    return dict(row, step=step, epoch=f"{step / per_epoch:.4f}", learning_rate=f"{lr:.6e}")


class _Steps:
    """The step loop; its state lives here so an interrupted run can still be logged and saved."""

    def __init__(self, plan: Plan, net, train: batches.WindowSampler, val: Optional[batches.WindowSampler],
                 bar: ProgressBar, log: TrainingLog):
        self.plan, self.net, self.train, self.val, self.bar, self.log = plan, net, train, val, bar, log
        self.val_ids = val.fixed_subset(plan.cfg.random_seed, plan.cfg.batch_size) if val is not None else None
        self.losses, self.history, self.rows = [], [], []
        self.order, self.order_epoch = None, -1

    def run(self) -> None:
        for step in range(self.plan.start_step, self.plan.end_step):
            self._step(step)
            if (step + 1) % self.plan.steps_per_epoch == 0:
                self._epoch_end(step + 1)
        self.flush()

    def flush(self) -> None:
        self.log.append(self.rows)
        self.rows = []

    def _step(self, step: int) -> None:
        cfg, per_epoch = self.plan.cfg, self.plan.steps_per_epoch
        epoch, j = divmod(step, per_epoch)
        if epoch != self.order_epoch:
            self.order, self.order_epoch = self.train.epoch_order(cfg.random_seed, epoch), epoch
        batch = self.train.gather(self.order[j * cfg.batch_size:(j + 1) * cfg.batch_size])
        lr = learning_rate(cfg, step, self.train.num_frames)
        onehot = _one_hot(batch.conditions, self.plan.dims.num_conditions)
        out = self.net.train_step(batch.windows, onehot, batch.targets, np.float32(lr))
        loss = float(out["loss"])
        if not np.isfinite(loss):
            self.flush()
            raise InputError(f"the training loss became {loss} at step {step + 1}: lower learning_rate "
                             f"(now {cfg.learning_rate:g}) and start again (nothing was saved for this step)")
        self.losses.append(loss)
        self.rows.append(_log_row(step + 1, per_epoch, {k: v.numpy() for k, v in out.items()}, lr))
        self.bar.update(step + 1, loss)

    def _epoch_end(self, step: int) -> None:
        epoch = step // self.plan.steps_per_epoch
        if self.val_ids is not None:
            result = dict(validate(self.net, self.val, self.val_ids, self.plan.dims.num_conditions),
                          step=step, epoch=epoch)
            self.history.append(result)
            self.rows[-1].update(validation_loss=f"{result['loss']:.6e}",
                                 validation_error_mm=f"{result['error_mm']:.6f}")
            self.bar.note(f"epoch {epoch}: training loss {self.losses[-1]:.3e}, validation loss "
                          f"{result['loss']:.3e}, mean vertex error {result['error_mm']:.3f} mm")
        if epoch % self.plan.cfg.save_every_epochs == 0 and step < self.plan.end_step:
            self.flush()
            self.bar.note(f"saved {_save(self.plan, self.net)}")


def _save(plan: Plan, net) -> Path:
    return checkpoint.save(plan.out, net.state(), plan.dataset.conditions, plan.dataset.condition_by)


def train(data_dir, deepspeech, out, config=None, steps: Optional[int] = None, init=None, resume: bool = False,
          cache=None, threads: int = 0, stream: Optional[TextIO] = None,
          summary_stream: Optional[TextIO] = None) -> TrainingResult:
    """Train (or fine-tune, or resume) VOCA; see the module docstring. Returns the run's figures.

    Raises
    ------
    VocaError
        Any refused input (config, data, checkpoints, ``--out``), before anything is written.
    """
    stream = stream or sys.stderr
    plan = plan_run(data_dir, deepspeech, out, config, steps, init, resume)
    for note in plan.cfg.notes:
        stream.write(f"note: {note}\n")
    began = time.perf_counter()
    train_sampler, val_sampler = _samplers(plan, deepspeech, cache, stream)
    _set_threads(threads)
    net = build_model(plan, train_sampler)
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / CONFIG_FILE).write_text(to_ini(plan.cfg), "utf-8")
    log = TrainingLog(plan.out / LOG_FILE)
    log.truncate(plan.start_step)
    bar = ProgressBar(plan.start_step, plan.end_step, stream)
    step_began = time.perf_counter()
    steps_loop = _Steps(plan, net, train_sampler, val_sampler, bar, log)
    try:
        steps_loop.run()
    except KeyboardInterrupt:
        steps_loop.flush()
        bar.close()
        stream.write(f"interrupted: saved {_save(plan, net)}; continue with --resume\n")
        raise
    seconds = time.perf_counter() - step_began
    bar.close()
    result = TrainingResult(_save(plan, net), plan.dataset.conditions, plan.start_step, plan.end_step,
                            plan.steps_per_epoch, seconds, np.asarray(steps_loop.losses), steps_loop.history, net)
    print_summary(result, plan, time.perf_counter() - began, summary_stream or sys.stdout)
    return result


def _samplers(plan: Plan, deepspeech, cache, stream: TextIO) -> tuple:
    """Step 2: speech features (cached) and the training / validation samplers."""
    bar = ProgressBar(0, len(plan.dataset.train) + len(plan.dataset.validation), stream,
                      "speech features", "sequences")
    features = batches.compute_features(plan.dataset, deepspeech, cache, lambda done, total, name: bar.update(done))
    bar.close()
    k = plan.cfg.num_consecutive_frames
    train = batches.WindowSampler(plan.dataset, plan.dataset.train, features, k)
    val = batches.WindowSampler(plan.dataset, plan.dataset.validation, features, k) if plan.dataset.validation else None
    return train, val


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 60 else format_duration(value)


def print_summary(result: TrainingResult, plan: Plan, total_s: float, stream: TextIO) -> None:
    """The end-of-run summary: steps, speed, loss drop, validation, checkpoint and how to use it."""
    n = len(result.losses)
    first, last = result.losses[:SUMMARY_WINDOW].mean(), result.losses[-SUMMARY_WINDOW:].mean()
    lines = [f"trained steps {result.start_step + 1}..{result.end_step} ({n / result.steps_per_epoch:.2f} epochs of "
             f"{result.steps_per_epoch} steps) in {format_duration(result.seconds)} ({result.steps_per_second:.1f} "
             f"steps/s; {_seconds(result.seconds / n * result.steps_per_epoch)} per epoch; "
             f"{format_duration(total_s)} with data and features)",
             f"training loss {first:.3e} -> {last:.3e} (mean of the first / last {min(n, SUMMARY_WINDOW)} steps, "
             f"{first / last:.1f}x lower)" if last > 0 else f"training loss {first:.3e} -> {last:.3e}"]
    if result.validation:
        best = min(result.validation, key=lambda r: r["loss"])
        final = result.validation[-1]
        lines.append(f"validation: loss {final['loss']:.3e}, mean vertex error {final['error_mm']:.3f} mm at epoch "
                     f"{final['epoch']} (best loss {best['loss']:.3e} at epoch {best['epoch']})")
    else:
        lines.append("validation: none (no validation sequences in the data)")
    if plan.dataset.skipped:
        lines.append(f"skipped {len(plan.dataset.skipped)} sequence(s) named in the config but not in the data, "
                     f"e.g. {plan.dataset.skipped[0]}")
    names = ", ".join(f"{i}={name}" for i, name in enumerate(result.conditions, 1))
    lines += [f"checkpoint: {result.prefix} (conditions {names})",
              f"use it: python -m voca_addon infer AUDIO --voca {result.prefix} --deepspeech output_graph.pb "
              "--template FLAME_sample.ply --condition 1",
              f"in Blender: choose {result.prefix}.index as the VOCA model in the add-on's preferences"]
    stream.write("\n".join(lines) + "\n")
    stream.flush()
