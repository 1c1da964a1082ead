"""Training runs on real data: the loss falls, one sequence is overfitted, emotions select outputs,
resume continues, --init starts from given weights, the command line works."""
import csv

import numpy as np
import pytest

from tests.training.conftest import TRAIN_FRAMES, copy_run, cut, engine_windows, run_training
from voca_addon.cli import main as cli
from voca_addon.core.models import conditions, modelfiles
from voca_addon.core.formats import tfbundle
from voca_addon.core import engine
from voca_addon.core.errors import InputError

pytest.importorskip("tensorflow", reason="training needs TensorFlow 2")

LOSS_FACTOR = 5.0            # first / last 10 steps of 300 (measured 8.2x)
OVERFIT_MM = 0.15            # mean vertex error on a training sequence after 300 steps (measured 0.11 mm)
MM = 1000.0


def _log(out):
    with open(out / "training_log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_train_loss_falls_and_one_sequence_is_overfitted(tiny_run, clips, template, ds_model, model_cache):
    losses = tiny_run.result.losses
    factor = losses[:10].mean() / losses[-10:].mean()
    piece = cut(clips["official_test_sentence"], 0, TRAIN_FRAMES)
    model = modelfiles.load_voca(tiny_run.result.prefix, model_cache)
    anim = engine.animate_windows(engine_windows(ds_model, piece), model, template, condition=1)
    error = np.linalg.norm(anim.vertices() - piece.vertices, axis=-1).mean() * MM
    still = np.linalg.norm(piece.vertices - piece.vertices.mean(0), axis=-1).mean() * MM
    print(f"\n[figures] 300 steps: loss {losses[:10].mean():.3e} -> {losses[-10:].mean():.3e} ({factor:.1f}x); "
          f"training sequence mean vertex error {error:.3f} mm (its mean face: {still:.3f} mm); "
          f"{tiny_run.result.steps_per_second:.1f} steps/s")
    assert factor > LOSS_FACTOR
    assert error < OVERFIT_MM < still


def test_train_progress_validation_and_summary_are_shown(tiny_run):
    err, out = tiny_run.stderr, tiny_run.stdout
    assert "step 300/300 [########################] loss" in err and "steps/s ETA" in err
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 300 // 7 and "validation loss" in epochs[0] and "mean vertex error" in epochs[0]
    assert "x lower" in out and "validation: loss" in out and "per epoch" in out
    assert f"checkpoint: {tiny_run.result.prefix}" in out and "1=official_test_sentence, 2=official_test" in out
    rows = _log(tiny_run.out)
    assert [int(r["step"]) for r in rows] == list(range(1, 301))
    assert sum(bool(r["validation_loss"]) for r in rows) == 300 // 7
    assert (tiny_run.out / "training_config.ini").is_file() and (tiny_run.out / "checkpoint").is_file()


def test_train_emotion_conditions_select_different_outputs(emotion_run, clips, template, angry_delta, ds_model,
                                                           model_cache):
    prefix = emotion_run.result.prefix
    assert emotion_run.result.conditions == ("happy", "angry")
    model = modelfiles.load_voca(prefix, model_cache)
    assert conditions.condition_names(prefix, model.dims.num_conditions) == ["happy", "angry"]
    windows = engine_windows(ds_model, clips["official_test_sentence"])
    happy = engine.animate_windows(windows, model, template, condition=1).vertices()
    angry = engine.animate_windows(windows, model, template, condition=2).vertices()
    moved = np.linalg.norm(angry - happy, axis=-1).mean() * MM
    off = np.linalg.norm(angry - happy - angry_delta, axis=-1).mean() * MM
    size = np.linalg.norm(angry_delta, axis=-1).mean() * MM
    print(f"\n[figures] emotion run: angry - happy differs by {moved:.2f} mm per vertex; it misses the "
          f"seed's angry offset ({size:.2f} mm) by {off:.2f} mm")
    assert moved > 0.5 * size and off < 0.35 * size


def test_train_resume_continues_step_count_and_loss_curve(tiny_run, tmp_path, tiny_data, ds_small_pb,
                                                          feature_cache):
    out = copy_run(tiny_run, tmp_path / "run")
    resumed = run_training(out, data_dir=tiny_data, deepspeech=ds_small_pb, steps=30, resume=True,
                           cache=feature_cache)
    assert resumed.result.start_step == 300 and resumed.result.end_step == 330
    assert resumed.result.prefix.name == "gstep_330.model"
    rows = _log(out)
    assert [int(r["step"]) for r in rows] == list(range(1, 331))
    before, after = tiny_run.result.losses, resumed.result.losses
    assert after[:10].mean() < 0.5 * before[:10].mean()          # goes on from the trained state
    assert after[:10].mean() < 2.0 * before[-10:].mean()
    state = tfbundle.read_checkpoint(resumed.result.prefix, ["VOCA/global_step", "VOCA/beta1_power"])
    assert int(state["VOCA/global_step"]) == 330
    assert np.isclose(float(state["VOCA/beta1_power"]), 0.9 ** 331, rtol=1e-4)


def test_train_resume_equals_an_uninterrupted_run(tmp_path, tiny_data, tiny_config, ds_small_pb, feature_cache):
    kwargs = dict(data_dir=tiny_data, deepspeech=ds_small_pb, cache=feature_cache)
    straight = run_training(tmp_path / "straight", config=tiny_config, steps=16, **kwargs)
    run_training(tmp_path / "split", config=tiny_config, steps=9, **kwargs)   # across an epoch end (7 steps)
    split = run_training(tmp_path / "split", steps=7, resume=True, **kwargs)
    np.testing.assert_allclose(split.result.losses, straight.result.losses[9:], rtol=1e-4)
    a, b = (tfbundle.read_checkpoint(r.result.prefix) for r in (straight, split))
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-9, err_msg=name)


def test_train_init_starts_from_the_official_format_checkpoint(voca_ckpt, tmp_path, release_data, release_config,
                                                               ds_small_pb, feature_cache):
    cfg = tmp_path / "tiny_lr.ini"
    cfg.write_text(release_config.read_text().replace("learning_rate = 1e-3", "learning_rate = 1e-12"))
    run = run_training(tmp_path / "ft", data_dir=release_data, deepspeech=ds_small_pb, config=cfg, steps=1,
                       init=voca_ckpt, cache=feature_cache)
    given, ours = tfbundle.read_checkpoint(voca_ckpt), tfbundle.read_checkpoint(run.result.prefix)
    assert int(given["VOCA/global_step"]) == 52280 and int(ours["VOCA/global_step"]) == 1   # a new run
    assert np.isclose(float(ours["VOCA/beta1_power"]), 0.81)                              # a fresh Adam
    for name in run.result.model.trainable:                                               # weights: the given ones
        np.testing.assert_allclose(ours[name], given[name], rtol=1e-6, atol=1e-9, err_msg=name)
    moving = "VOCA/SpeechEncoder/batch_norm/moving_mean"                                  # BN stats: one 0.9 update
    assert not np.array_equal(ours[moving], given[moving])


def test_train_refuses_unusable_run_folders_and_checkpoints(tmp_path, tiny_run, tiny_data, tiny_config, voca_ckpt,
                                                            ds_small_pb, feature_cache):
    kwargs = dict(data_dir=tiny_data, deepspeech=ds_small_pb, config=tiny_config, steps=5, cache=feature_cache)
    with pytest.raises(InputError, match="already holds a training run .*pass --resume"):
        run_training(tiny_run.out, **kwargs)
    with pytest.raises(InputError, match="holds no checkpoint"):
        run_training(tmp_path / "empty", resume=True, **kwargs)
    with pytest.raises(InputError, match="num conditions 8 but this run has 2"):
        run_training(tmp_path / "ft", init=voca_ckpt, **kwargs)
    with pytest.raises(InputError, match="give one"):
        run_training(tmp_path / "both", init=voca_ckpt, resume=True, **kwargs)
    assert not (tmp_path / "empty").exists() and not (tmp_path / "ft").exists()


def test_train_command_line(tmp_path, tiny_data, tiny_config, ds_small_pb, feature_cache, capsys):
    out = tmp_path / "cli"
    rc = cli.main(["train", "--config", str(tiny_config), "--data", str(tiny_data), "--deepspeech", str(ds_small_pb),
                   "--out", str(out), "--steps", "8", "--cache", str(feature_cache), "--threads", "2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "step 8/8" in captured.err and "epoch 1: training loss" in captured.err
    assert "trained steps 1..8" in captured.out and (out / "gstep_8.model.index").is_file()
    assert (out / "gstep_8.model.conditions.json").is_file()


def test_train_interrupt_saves_a_checkpoint_to_resume_from(tmp_path, tiny_data, tiny_config, ds_small_pb,
                                                            feature_cache, monkeypatch):
    from voca_training import train as train_mod
    real = train_mod.learning_rate

    def stop_at_five(cfg, step, frames):
        if step == 5:
            raise KeyboardInterrupt
        return real(cfg, step, frames)
    monkeypatch.setattr(train_mod, "learning_rate", stop_at_five)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_training(out, data_dir=tiny_data, deepspeech=ds_small_pb, config=tiny_config, steps=20,
                     cache=feature_cache)
    assert (out / "gstep_5.model.index").is_file() and len(_log(out)) == 5
    monkeypatch.setattr(train_mod, "learning_rate", real)
    resumed = run_training(out, data_dir=tiny_data, deepspeech=ds_small_pb, steps=3, resume=True,
                           cache=feature_cache)
    assert resumed.result.end_step == 8 and len(_log(out)) == 8
