"""Training config: VOCA's defaults, VOCA-style files load, typos and unusable values are refused."""
import dataclasses
from pathlib import Path

import pytest

from voca_training import config
from voca_training.errors import ConfigError

CONFIGS = Path(config.__file__).parent / "configs"


def _write(tmp_path, text):
    path = tmp_path / "c.ini"
    path.write_text(text)
    return path


def test_config_defaults_are_vocas():
    cfg = config.load_config(None)
    assert (cfg.batch_size, cfg.learning_rate, cfg.decay_rate, cfg.epoch_num, cfg.adam_beta1_value) == \
        (64, 1e-4, 1.0, 100, 0.9)
    assert (cfg.expression_dim, cfg.speech_encoder_size_factor, cfg.num_vertices) == (50, 1, 5023)
    assert (cfg.num_consecutive_frames, cfg.velocity_weight, cfg.acceleration_weight,
            cfg.verts_regularizer_weight, cfg.absolute_reconstruction_loss) == (2, 10.0, 0.0, 0.0, False)
    assert cfg.subject_for_training[2] == "FaceTalk_170725_00137_TA" and len(cfg.subject_for_training) == 8
    assert cfg.sequence_for_training == tuple(f"sentence{i:02d}" for i in range(1, 41))
    assert cfg.sequence_for_validation[0] == "sentence21" and cfg.init_expression
    assert cfg.decoder_scope_path == "VOCA/FlameExpressionLayer" and cfg.condition_by == "subject"


def test_config_shipped_default_file_is_the_defaults_and_round_trips(tmp_path):
    assert config.load_config(CONFIGS / "voca_default.ini") == config.TrainingConfig()
    changed = dataclasses.replace(config.TrainingConfig(), learning_rate=3e-4, subject_for_training=("a", "b"),
                                  condition_by="emotion", decoder_scope="ExpressionLayer")
    assert config.load_config(_write(tmp_path, config.to_ini(changed))) == changed


def test_config_seed_ravdess_file_loads_and_matches_our_example(shared_data):
    seed = config.load_config(shared_data / "ravdess_variant" / "training_config.ini")
    assert (seed.speech_encoder_size_factor, seed.expression_dim, seed.num_consecutive_frames) == (4, 100, 6)
    assert (seed.velocity_weight, seed.acceleration_weight, seed.batch_size) == (2.257, 0.5, 16)
    assert (seed.learning_rate, seed.decay_rate, seed.epoch_num) == (0.0035, 0.9, 5)
    assert seed.subject_for_training == ("Actor_01", "Actor_02", "Actor_03", "Actor_04")
    assert len(seed.sequence_for_training) == 112 and any("checkpoint_dir" in n for n in seed.notes)
    ours = config.load_config(CONFIGS / "ravdess_seed.ini")
    assert ours.decoder_scope == "ExpressionLayer"             # the seed's checkpoint gstep_1901 names
    for f in dataclasses.fields(ours):
        if f.name not in ("expression_basis_fname", "decoder_scope", "notes"):
            a, b = getattr(ours, f.name), getattr(seed, f.name)
            assert (sorted(a) if isinstance(a, tuple) else a) == (sorted(b) if isinstance(b, tuple) else b), f.name


@pytest.mark.parametrize("text, match", [
    ("[Model Parameters]\nvelocity_wieght = 1\n", "unknown key 'velocity_wieght' in \\[Model Parameters\\]"),
    ("[Model Paramters]\n", "unknown section"),
    ("[Learning Parameters]\nbatch_size = many\n", "batch_size = 'many' is not a whole number"),
    ("[Learning Parameters]\nbatch_size = 2.5\n", "whole number"),
    ("[Model Parameters]\ninit_expression = perhaps\n", "True or False"),
    ("[Audio Parameters]\naudio_window_size = 32\n", "audio_window_size = 32 is not supported"),
    ("[Audio Parameters]\ncondition_speech_features = False\n", "is not supported"),
    ("[Audio Parameters]\nspeech_encoder_size_factor = 1.5\n", "whole number"),
    ("[Model Parameters]\nnum_consecutive_frames = 1\n", "velocity loss needs num_consecutive_frames >= 2"),
    ("[Model Parameters]\nacceleration_weight = 1\n", "acceleration loss needs num_consecutive_frames >= 3"),
    ("[Model Parameters]\ndecoder_scope = Decoder\n", "FlameExpressionLayer, ExpressionLayer"),
    ("[Model Parameters]\nencoder_init = xavier\n", "voca, scaled"),
    ("[Data Setup]\ncondition_by = speaker\n", "subject, emotion"),
    ("[Data Setup]\nsubject_for_training =\n", "at least one training subject"),
    ("[Learning Parameters]\nlearning_rate = 0\n", "learning_rate: must be > 0"),
    ("[Learning Parameters]\ndecay_rate = 1.5\n", "decay_rate"),
    ("no section header\n", "not a readable INI file"),
])
def test_config_refuses_bad_files_with_the_key_named(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        config.load_config(_write(tmp_path, text))


def test_config_missing_file_and_relative_basis_path(tmp_path):
    with pytest.raises(ConfigError, match="was not found"):
        config.load_config(tmp_path / "none.ini")
    cfg = config.load_config(_write(tmp_path, "[Input Output]\nexpression_basis_fname = basis.npy\n"
                                              "[Model Parameters]\ndecoder_scope = VOCA/ExpressionLayer\n"))
    assert cfg.expression_basis_fname == str(tmp_path / "basis.npy")
    assert cfg.decoder_scope == "ExpressionLayer"
