"""The command line's progress lines (plain when stderr is not a terminal), infer --no-vertices, and a
long WAV through features / infer, streamed, equal to the same speech loaded whole."""
import numpy as np
from scipy.io import wavfile

from tests.core.test_cli import cli, infer_args, models  # noqa: F401  (models is a fixture)
from voca_addon.core import engine
from voca_addon.core.models import modelfiles
from voca_addon.core.speech import audio


def test_cli_progress_names_the_stages_in_plain_lines(models, tmp_path):
    out = tmp_path / "f.npz"
    r = cli("features", models["wav"], "--deepspeech", models["ds"], "--out", out, cache=models["cache"])
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if not line.startswith("warning: ")]  # test graph
    assert lines[0] == "[  0%] reading audio"
    assert any(line.endswith("speech features (MFCC)") for line in lines)
    assert any("speech recognition (DeepSpeech)" in line for line in lines)
    assert lines[-1].startswith("[100%]") and "\r" not in r.stderr and "\x1b" not in r.stderr
    assert r.stdout.strip() == f"wrote {out}"


def test_cli_infer_no_vertices_writes_the_compact_form(models, tmp_path):
    out = tmp_path / "o.npz"
    r = cli(*infer_args(models, out, "--no-vertices"), cache=models["cache"])
    assert r.returncode == 0, r.stderr
    assert "face motion (VOCA)" in r.stderr and "writing" in r.stderr
    with np.load(out) as z:
        assert "vertices" not in z.files and z["weights"].shape == (306, 50) and z["basis"].shape == (50, 5023, 3)


def test_cli_long_wav_is_streamed_with_the_same_result(models, shared_data, tmp_path):
    clips = sorted((shared_data / "audio" / "vocaset").glob("*/sentence0*.wav"))
    parts, rate = [], None
    for c in clips * 2:
        rate, x = wavfile.read(c)
        parts.append(x[:, 0] if x.ndim > 1 else x)
    long = tmp_path / "long.wav"                                    # 70 s: streamed (≥ 60 s)
    wavfile.write(long, rate, np.concatenate(parts)[: 70 * rate])
    out = tmp_path / "f.npz"
    r = cli("features", long, "--deepspeech", models["ds"], "--out", out, cache=models["cache"])
    assert r.returncode == 0, r.stderr
    ds = modelfiles.load_deepspeech(models["ds"], models["cache"])
    whole = engine.speech_features(audio.load_audio(long), ds)      # loaded whole, in this process
    with np.load(out) as z:                                         # another process: float32 rounding only
        assert np.abs(z["logits"] - whole.logits).max() <= 1e-6 * np.abs(whole.logits).max()
        assert np.abs(z["windows"] - whole.windows).max() <= 1e-6 * np.abs(whole.windows).max()
        assert z["windows"].shape == whole.windows.shape == (4200, 16, 29)
