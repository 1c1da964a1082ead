"""Fixtures for the training tests: tiny VOCA-format datasets built from ../shared/data, shared runs.

The data are real: the official VOCA outputs for ``audio/test_sentence.wav`` (306 frames, condition 3)
and ``audio/test.wav`` (287 frames) with their audio, cut at frame boundaries where a test needs
pieces. Features come from the random-weight official-format DeepSpeech graph (``ds_small_pb``) and
are cached in the fixture cache, so a second session computes none. Each training run is a session
fixture shared by the tests that look at it; TensorFlow runs with 2 threads.
"""
from __future__ import annotations

import io
import pickle
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

FPS = 60
THREADS = 2
SEQUENCES = {   # subject name → (audio file, official output)
    "official_test_sentence": ("test_sentence.wav", "output_test_sentence_cond3.npz"),
    "official_test": ("test.wav", "output_test.npz"),
}
TRAIN_FRAMES = 240          # frames 0..239 of each sequence train, the rest validate
TINY_CONFIG = """
[Model Parameters]
num_consecutive_frames = 2
velocity_weight = 10.0
encoder_init = scaled
[Data Setup]
subject_for_training = official_test_sentence official_test
sequence_for_training = sentence01
subject_for_validation = official_test_sentence official_test
sequence_for_validation = sentence02
subject_for_testing =
sequence_for_testing =
[Learning Parameters]
batch_size = 64
learning_rate = 1e-3
save_every_epochs = 1000
"""


@dataclass
class Clip:
    """A piece of a real sequence: int16 samples, rate, vertices [F, 5023, 3]."""
    samples: np.ndarray
    rate: int
    vertices: np.ndarray


def load_clip(shared_data: Path, subject: str) -> Clip:
    from voca_addon.core.speech import audio
    wav, npz = SEQUENCES[subject]
    clip = audio.load_audio(shared_data / "audio" / wav)
    with np.load(shared_data / "voca_official" / npz) as z:
        verts = z["vertices"].astype(np.float32)
    return Clip(clip.samples.astype(np.int16), clip.rate, verts)


def cut(clip: Clip, first: int, last: int) -> Clip:
    """Frames first..last-1 and the audio samples of exactly that time span."""
    a, b = (int(round(f * clip.rate / FPS)) for f in (first, last))
    return Clip(clip.samples[a:b], clip.rate, clip.vertices[first:last])


def write_voca_folder(root: Path, entries: List[Tuple[str, str, Clip]], templates: dict,
                      wav_folder: bool = False) -> Path:
    """Write VOCA's four files for (subject, sequence, clip) entries; audio as a pickle or WAV folder."""
    root.mkdir(parents=True, exist_ok=True)
    verts, index, raw, start = [], {}, {}, 0
    for subject, seq, clip in entries:
        frames = len(clip.vertices)
        index.setdefault(subject, {})[seq] = {f: start + f for f in range(frames)}
        raw.setdefault(subject, {})[seq] = {"audio": clip.samples, "sample_rate": clip.rate}
        verts.append(clip.vertices)
        start += frames
    np.save(root / "data_verts.npy", np.concatenate(verts))
    for name, obj in (("subj_seq_to_idx.pkl", index), ("templates.pkl", templates)):
        (root / name).write_bytes(pickle.dumps(obj, protocol=2))
    if wav_folder:
        from scipy.io import wavfile
        for subject, seqs in raw.items():
            (root / "audio" / subject).mkdir(parents=True, exist_ok=True)
            for seq, entry in seqs.items():
                wavfile.write(root / "audio" / subject / f"{seq}.wav", entry["sample_rate"], entry["audio"])
    else:
        (root / "raw_audio_fitted.pkl").write_bytes(pickle.dumps(raw, protocol=2))
    return root


@pytest.fixture(scope="session")
def clips(shared_data):
    return {s: load_clip(shared_data, s) for s in SEQUENCES}


@pytest.fixture(scope="session")
def template(flame_template):
    return flame_template.vertices.astype(np.float32)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, clips, template) -> Path:
    """Two conditions (the two official sequences); frames 0..239 train, the rest validate."""
    entries = []
    for subject, clip in clips.items():
        entries += [(subject, "sentence01", cut(clip, 0, TRAIN_FRAMES)),
                    (subject, "sentence02", cut(clip, TRAIN_FRAMES, len(clip.vertices)))]
    return write_voca_folder(tmp_path_factory.mktemp("tiny"), entries, {s: template for s in clips})


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.ini"
    path.write_text(TINY_CONFIG)
    return path


@pytest.fixture(scope="session")
def feature_cache(fixture_cache) -> Path:
    """Model + feature cache shared across sessions (features of the shared clips are computed once)."""
    path = fixture_cache / "training-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Run:
    """A finished training run: its result object, output folder and captured output."""
    result: object
    out: Path
    stdout: str
    stderr: str


def run_training(out: Path, **kwargs) -> Run:
    """``voca_training.train.train`` with output captured (2 threads)."""
    from voca_training.train import train
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        result = train(out=out, threads=THREADS, stream=stderr, summary_stream=stdout, **kwargs)
    return Run(result, out, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data, tiny_config, ds_small_pb, feature_cache) -> Run:
    """The two-condition dataset, 300 steps from scratch (PCA-initialised decoder)."""
    out = tmp_path_factory.mktemp("run") / "tiny"
    return run_training(out, data_dir=tiny_data, deepspeech=ds_small_pb, config=tiny_config, steps=300,
                        cache=feature_cache)


def copy_run(run: Run, dest: Path) -> Path:
    shutil.copytree(run.out, dest)
    return dest


# --- the release's shape: 8 conditions (the two sequences cut into 4 pieces each), size 1, code 50 --
PIECES = 4
RELEASE_CONFIG = """
[Model Parameters]
encoder_init = scaled
[Data Setup]
subject_for_training = {subjects}
sequence_for_training = sentence01
subject_for_validation =
subject_for_testing =
[Learning Parameters]
learning_rate = 1e-3
"""


def piece_names(clips) -> list:
    return [f"{subject.replace('official_', '')}_{i + 1}" for subject in clips for i in range(PIECES)]


@pytest.fixture(scope="session")
def release_data(tmp_path_factory, clips, template) -> Path:
    entries, names = [], iter(piece_names(clips))
    for clip in clips.values():
        edges = np.linspace(0, len(clip.vertices), PIECES + 1).round().astype(int)
        entries += [(next(names), "sentence01", cut(clip, a, b)) for a, b in zip(edges[:-1], edges[1:])]
    return write_voca_folder(tmp_path_factory.mktemp("release"), entries, {e[0]: template for e in entries})


@pytest.fixture(scope="session")
def release_config(tmp_path_factory, clips) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "release.ini"
    path.write_text(RELEASE_CONFIG.format(subjects=" ".join(piece_names(clips))))
    return path


@pytest.fixture(scope="session")
def release_run(tmp_path_factory, release_data, release_config, ds_small_pb, feature_cache) -> Run:
    out = tmp_path_factory.mktemp("run") / "release"
    return run_training(out, data_dir=release_data, deepspeech=ds_small_pb, config=release_config, steps=60,
                        cache=feature_cache)


# --- emotions: the same speech as 'happy' (official output) and 'angry' (plus the seed's angry offset) --
EMOTION_NAMES = {  # (clip, emotion code) → RAVDESS name: audio-only speech, strong, statement 1 / 2
    ("official_test_sentence", 3): "03-01-03-02-01-01-01.wav",
    ("official_test_sentence", 5): "03-01-05-02-01-01-01.wav",
    ("official_test", 3): "03-01-03-02-02-01-01.wav",
    ("official_test", 5): "03-01-05-02-02-01-01.wav",
}
EMOTION_CONFIG = """
[Model Parameters]
encoder_init = scaled
[Data Setup]
condition_by = emotion
subject_for_training = Actor_01
sequence_for_training = *
subject_for_validation =
subject_for_testing =
[Learning Parameters]
learning_rate = 1e-3
"""


@pytest.fixture(scope="session")
def angry_delta(shared_data) -> np.ndarray:
    """The seed project's 'angry' emotion as a displacement (angry − neutral), float32 [5023, 3], metres."""
    with np.load(shared_data / "emotions" / "seed_emotion_offsets.npz") as z:
        names = list(z["names"])
        return (z["offsets"][names.index("angry")] - z["offsets"][names.index("neutral")]).astype(np.float32)


@pytest.fixture(scope="session")
def emotion_data(tmp_path_factory, clips, template, angry_delta) -> Path:
    entries = []
    for (subject, code), name in EMOTION_NAMES.items():
        clip = clips[subject]
        verts = clip.vertices + (angry_delta if code == 5 else 0)
        entries.append(("Actor_01", name, Clip(clip.samples, clip.rate, verts.astype(np.float32))))
    return write_voca_folder(tmp_path_factory.mktemp("emotion"), entries, {"Actor_01": template})


@pytest.fixture(scope="session")
def emotion_run(tmp_path_factory, emotion_data, ds_small_pb, feature_cache) -> Run:
    cfg = tmp_path_factory.mktemp("cfg") / "emotion.ini"
    cfg.write_text(EMOTION_CONFIG)
    out = tmp_path_factory.mktemp("run") / "emotion"
    return run_training(out, data_dir=emotion_data, deepspeech=ds_small_pb, config=cfg, steps=200,
                        cache=feature_cache)


@pytest.fixture(scope="session")
def ds_model(ds_small_pb, feature_cache):
    from voca_addon.core.models import modelfiles
    return modelfiles.load_deepspeech(ds_small_pb, feature_cache)


def engine_windows(ds_model, clip: Clip) -> np.ndarray:
    """The add-on's speech windows [F, 16, 29] for a clip (what the extension feeds the model)."""
    from voca_addon.core.speech import audio
    from voca_addon.core import engine
    return engine.speech_features(audio.Audio(clip.samples.astype(np.float64), clip.rate), ds_model, FPS).windows
