"""audio: WAV parsing of every width, other formats through Blender's aud, VOCA's int16 16 kHz path, refusals."""
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from voca_addon.core.speech import audio as au
from voca_addon.core.errors import AudioError, InputError
from voca_addon.core.speech.features import deepspeech_input

ROOT = Path(__file__).resolve().parents[3]
PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def riff(chunks, declared_size=None) -> bytes:
    """A RIFF/WAVE file from (id, body) chunks, each padded to an even length."""
    body = b"WAVE"
    for cid, data in chunks:
        body += cid + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", declared_size or len(body)) + body


def fmt_chunk(tag, channels, rate, width, valid_bits=None):
    header = struct.pack("<HHIIHH", EXTENSIBLE if valid_bits else tag, channels, rate,
                         rate * channels * width, channels * width, 8 * width)
    if valid_bits:
        header += struct.pack("<HHI", 22, valid_bits, 0) + struct.pack("<H", tag) + GUID_TAIL
    return b"fmt ", header


def encode(samples_int16: np.ndarray, kind: str) -> tuple:
    """Encode an int16 [n, c] signal as the WAV sample type `kind` → (format tag, width, bytes)."""
    s = samples_int16.astype(np.int64)
    if kind == "u8":
        return PCM, 1, ((s >> 8) + 128).astype(np.uint8).tobytes()
    if kind == "s16":
        return PCM, 2, s.astype("<i2").tobytes()
    if kind == "s24":
        v = (s << 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        return PCM, 3, v.tobytes()
    if kind == "s32":
        return PCM, 4, (s << 16).astype("<i4").tobytes()
    if kind == "f32":
        return FLOAT, 4, (s / 32768.0).astype("<f4").tobytes()
    return FLOAT, 8, (s / 32768.0).astype("<f8").tobytes()


def write_wav(path, samples_int16, rate, kind="s16", extensible=False, extra=()):
    samples = samples_int16[:, None] if samples_int16.ndim == 1 else samples_int16
    tag, width, data = encode(samples, kind)
    fmt = fmt_chunk(tag, samples.shape[1], rate, width, valid_bits=8 * width if extensible else None)
    Path(path).write_bytes(riff([*extra, fmt, (b"data", data)]))
    return path


@pytest.fixture(scope="module")
def sentence(shared_data):
    rate, samples = scipy.io.wavfile.read(shared_data / "audio" / "test_sentence.wav")
    return rate, samples


def shared_clips(shared_data):
    return sorted((shared_data / "audio").rglob("*.wav"))


def test_load_audio_matches_scipy_on_shared_clips(shared_data):
    for clip in shared_clips(shared_data):
        rate, reference = scipy.io.wavfile.read(clip)
        audio = au.load_audio(clip)
        assert audio.rate == rate and audio.channels == 1 and audio.path == str(clip)
        assert audio.samples.dtype == np.float64 and np.array_equal(audio.samples, reference)
        assert audio.duration_s == pytest.approx(len(reference) / rate)
        assert not audio.samples.flags.writeable


@pytest.mark.parametrize("kind, extensible", [
    ("s16", False), ("s24", False), ("s32", False), ("f32", False), ("f64", False),
    ("s16", True), ("s24", True), ("f32", True)])
def test_load_audio_wav_widths_give_the_int16_samples(tmp_path, sentence, kind, extensible):
    rate, s = sentence
    path = write_wav(tmp_path / f"{kind}.wav", s, rate, kind, extensible)
    audio = au.load_audio(path)
    assert audio.rate == rate and np.array_equal(audio.samples, s)
    # Same samples, so the DeepSpeech input is identical to the 16-bit file's.
    assert np.array_equal(au.prepare_for_deepspeech(audio),
                          au.prepare_for_deepspeech(au.Audio(s.astype(float), rate)))


def test_load_audio_8bit_within_quantisation(tmp_path, sentence):
    rate, s = sentence
    audio = au.load_audio(write_wav(tmp_path / "u8.wav", s, rate, "u8"))
    error = audio.samples - s
    assert error.max() <= 0 and error.min() > -256      # (s >> 8) << 8: the low byte is dropped


def test_load_audio_agrees_with_scipy_on_24bit_and_float(tmp_path, sentence):
    rate, s = sentence
    for kind, scale in (("s24", 2.0 ** 16), ("f32", 1 / 32768.0)):
        path = write_wav(tmp_path / f"{kind}.wav", s, rate, kind)
        _, theirs = scipy.io.wavfile.read(path)         # 24-bit: int32 left-justified; float: as stored
        assert np.array_equal(au.load_audio(path).samples, theirs.astype(np.float64) / scale)


def test_load_audio_stereo_keeps_channels_and_to_mono_picks(tmp_path, sentence):
    rate, s = sentence
    stereo = np.stack([s, s // 2], axis=1)
    audio = au.load_audio(write_wav(tmp_path / "stereo.wav", stereo, rate, "s24", extensible=True))
    assert audio.channels == 2 and audio.samples.shape == (len(s), 2)
    assert np.array_equal(au.to_mono(audio), s)                      # VOCA: channel 0
    assert np.array_equal(au.to_mono(audio, 1), s // 2)
    assert np.array_equal(au.to_mono(audio, "mix"), (s + s // 2) / 2.0)
    with pytest.raises(InputError, match="channel 2 does not exist"):
        au.to_mono(audio, 2)
    with pytest.raises(InputError, match="'mix'"):
        au.to_mono(audio, "left")


def test_load_audio_reads_list_odd_chunks_and_streamed_sizes(tmp_path, sentence):
    rate, s = sentence
    short = s[:4001]                                           # odd byte count in 8-bit, odd frames
    extra = [(b"LIST", b"INFOISFT\x05\x00\x00\x00Lavf\x00"), (b"junk", b"abc")]   # odd-sized, padded
    path = write_wav(tmp_path / "chunks.wav", short, rate, "s16", extra=extra)
    assert np.array_equal(au.load_audio(path).samples, short)
    # A streamed file: RIFF and data sizes 0xFFFFFFFF, a truncated last frame.
    tag, width, data = encode(short.reshape(-1, 1), "s16")
    raw = riff([fmt_chunk(tag, 1, rate, width), (b"data", data)], declared_size=0xFFFFFFFF)
    raw = raw.replace(b"data" + struct.pack("<I", len(data)), b"data\xff\xff\xff\xff") + b"\x01"
    (tmp_path / "streamed.wav").write_bytes(raw)
    assert np.array_equal(au.load_audio(tmp_path / "streamed.wav").samples, short)


def test_load_audio_accepts_unpadded_odd_chunk(tmp_path, sentence):
    rate, s = sentence
    tag, width, data = encode(s[:800].reshape(-1, 1), "s16")
    fmt_id, fmt_body = fmt_chunk(tag, 1, rate, width)
    body = (b"WAVE" + b"junk" + struct.pack("<I", 3) + b"abc"       # no pad byte: a writer bug
            + fmt_id + struct.pack("<I", len(fmt_body)) + fmt_body + b"data" + struct.pack("<I", len(data)) + data)
    (tmp_path / "unpadded.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert np.array_equal(au.load_audio(tmp_path / "unpadded.wav").samples, s[:800])


def test_load_audio_non_ascii_path(tmp_path, sentence):
    rate, s = sentence
    folder = tmp_path / "Stimme_ä"
    folder.mkdir()
    path = write_wav(folder / "sprache_ü_音.wav", s, rate)
    audio = au.load_audio(path)
    assert np.array_equal(audio.samples, s) and audio.path == str(path)


def refused(path, match):
    with pytest.raises(AudioError, match=match) as info:
        au.load_audio(path)
    assert str(path) in str(info.value)


def test_load_audio_refuses_unusable_files(tmp_path, sentence, monkeypatch):
    rate, s = sentence
    refused(tmp_path / "missing.wav", "not found")
    refused(tmp_path, "is a folder")
    (tmp_path / "empty.wav").write_bytes(b"")
    refused(tmp_path / "empty.wav", "empty")
    (tmp_path / "text.wav").write_text("this is not audio")
    refused(tmp_path / "text.wav", "not a valid WAV")
    (tmp_path / "nofmt.wav").write_bytes(riff([(b"data", b"\x00\x01" * 100)]))
    refused(tmp_path / "nofmt.wav", "no 'fmt ' chunk")
    (tmp_path / "shortfmt.wav").write_bytes(riff([(b"fmt ", b"\x01\x00\x01\x00"), (b"data", b"\x00" * 8)]))
    refused(tmp_path / "shortfmt.wav", "truncated")
    (tmp_path / "nodata.wav").write_bytes(riff([fmt_chunk(PCM, 1, rate, 2)]))
    refused(tmp_path / "nodata.wav", "no 'data' chunk")
    refused(write_wav(tmp_path / "zero.wav", s[:0], rate), "no audio samples")
    refused(write_wav(tmp_path / "short.wav", s[:300], 16000), r"18\.8 ms long")
    refused(write_wav(tmp_path / "silent.wav", np.zeros(16000, np.int16), 16000, "f32"), "the audio is silent")
    nan = riff([fmt_chunk(FLOAT, 1, 16000, 4), (b"data", np.full(800, np.nan, "<f4").tobytes())])
    (tmp_path / "nan.wav").write_bytes(nan)
    refused(tmp_path / "nan.wav", "non-finite")
    odd = riff([fmt_chunk(FLOAT, 1, 16000, 2), (b"data", b"\x01\x00" * 800)])
    (tmp_path / "f16.wav").write_bytes(odd)
    refused(tmp_path / "f16.wav", "16-bit float samples")
    # Without Blender's aud and without soundfile, other formats are refused with a conversion hint.
    monkeypatch.setitem(sys.modules, "aud", None)
    monkeypatch.setitem(sys.modules, "soundfile", None)
    (tmp_path / "speech.mp3").write_bytes(b"ID3\x03\x00" + bytes(500))
    refused(tmp_path / "speech.mp3", r"format \.mp3.*ffmpeg -i")
    adpcm = riff([fmt_chunk(2, 1, 16000, 2), (b"data", b"\x01" * 1600)])
    (tmp_path / "adpcm.wav").write_bytes(adpcm)
    refused(tmp_path / "adpcm.wav", "compressed WAV codec")


def test_load_audio_decodes_other_formats_through_blender_aud(tmp_path, shared_data):
    """In Blender, `aud` decodes flac/mp3: a FLAC of the 16-bit clip gives its int16 samples back exactly."""
    pytest.importorskip("bpy", reason="bpy (Blender as a module) provides aud")
    script = textwrap.dedent(f"""
        import sys, numpy as np, bpy, aud
        sys.path.insert(0, {str(ROOT)!r})
        from voca_addon.core.speech.audio import load_audio
        from voca_addon.core.errors import AudioError
        wav = {str(shared_data / 'audio' / 'test_sentence.wav')!r}
        out = {str(tmp_path)!r}
        sound = aud.Sound(wav)
        sound.write(out + '/c.flac', rate=22000, channels=aud.CHANNELS_MONO, format=aud.FORMAT_S16,
                    container=aud.CONTAINER_FLAC, codec=aud.CODEC_FLAC)
        sound.write(out + '/c.mp3', rate=22050, channels=aud.CHANNELS_MONO, format=aud.FORMAT_S16,
                    container=aud.CONTAINER_MP3, codec=aud.CODEC_MP3, bitrate=128000)
        flac, ref = load_audio(out + '/c.flac'), load_audio(wav)
        assert flac.rate == 22000 and np.array_equal(flac.samples, ref.samples)
        mp3 = load_audio(out + '/c.mp3')
        assert mp3.rate == 22050 and 5000 < np.abs(mp3.samples).max() < 32768
        open(out + '/bad.ogg', 'wb').write(b'OggS' + bytes(100))
        try:
            load_audio(out + '/bad.ogg')
        except AudioError as exc:
            assert 'bad.ogg' in str(exc) and 'not a readable audio file' in str(exc), exc
        else:
            raise SystemExit('garbage ogg was accepted')
        print('ok')
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_to_int16_like_voca_truncates_and_clips():
    x = np.array([0.0, 0.9, -0.9, 1.5, -1.5, 32766.99, -32767.99, 32767.5, 40000.7, -40000.7, 1e6])
    in_range = np.abs(x) < 32768
    assert np.array_equal(au.to_int16_like_voca(x)[in_range], x[in_range].astype(np.int16))
    assert au.to_int16_like_voca(x)[~in_range].tolist() == [32767, -32768, 32767]
    # wrap=True reproduces numpy's astype('int16') (two's-complement wrap) for |x| < 2**31.
    big = np.random.default_rng(0).uniform(-2.0 ** 31 + 1, 2.0 ** 31 - 1, 10000)
    assert np.array_equal(au.to_int16_like_voca(big, wrap=True), big.astype(np.int16))
    assert np.array_equal(au.to_int16_like_voca(x, wrap=True), x.astype(np.int16))


def test_prepare_for_deepspeech_matches_voca_path(shared_data):
    """scipy read → channel 0 → resampy.resample(float) → astype(int16), on every shared clip."""
    resampy = pytest.importorskip("resampy")
    peak = 0.0
    for clip in shared_clips(shared_data):
        rate, samples = scipy.io.wavfile.read(clip)
        if samples.ndim > 1:
            samples = samples[:, 0]
        resampled = resampy.resample(samples.astype(float), rate, 16000)
        peak = max(peak, np.abs(resampled).max())
        ours = au.prepare_for_deepspeech(au.load_audio(clip))
        assert ours.dtype == np.int16 and np.array_equal(ours, resampled.astype("int16")), clip
    assert peak < 32767            # measured 23,924: clipping and VOCA's wrap agree on all shared audio


def test_prepare_for_deepspeech_refuses_silent_channel_and_short_audio(tmp_path, sentence):
    rate, s = sentence
    stereo = np.stack([np.zeros_like(s), s], axis=1)
    audio = au.load_audio(write_wav(tmp_path / "left_silent.wav", stereo, rate))
    with pytest.raises(AudioError, match="channel 0 is silent") as info:
        au.prepare_for_deepspeech(audio)
    assert "left_silent.wav" in str(info.value)
    signal = au.prepare_for_deepspeech(audio, channel=1)
    assert signal.shape == (int(len(s) * 16000 / rate),)
    assert deepspeech_input(signal).shape[1] == 494
    with pytest.raises(AudioError, match="ms long"):
        au.prepare_for_deepspeech(au.Audio(np.ones(100), 16000))


# --- one set of decoders, and the channel choice (issue 9) -------------------------------------------

def test_load_audio_decodes_flac_ogg_mp3_with_soundfile_outside_blender(tmp_path, sentence, monkeypatch):
    """Outside Blender (no aud) soundfile decodes: FLAC gives the int16 samples back exactly, the lossy
    codecs the same speech (correlation with the source)."""
    sf = pytest.importorskip("soundfile", reason="soundfile is the decoder outside Blender")
    monkeypatch.setitem(sys.modules, "aud", None)
    rate, s = sentence
    s16k = au.to_int16_like_voca(au.resample(s.astype(np.float64), rate, 16000))
    sf.write(tmp_path / "c.flac", s, rate, format="FLAC")
    flac = au.load_audio(tmp_path / "c.flac")
    assert flac.rate == rate and np.array_equal(flac.samples, s.astype(np.float64))
    for ext in ("ogg", "mp3"):
        sf.write(tmp_path / f"c.{ext}", s16k, 16000, format=ext.upper())
        lossy = au.load_audio(tmp_path / f"c.{ext}")
        n = min(lossy.num_samples, len(s16k))
        lag = int(np.argmax(np.correlate(lossy.samples[:4000], s16k[:4000].astype(np.float64), "full"))) - 3999
        a = lossy.samples[max(lag, 0):n] if lag >= 0 else lossy.samples[:n + lag]
        b = s16k[:len(a)].astype(np.float64) if lag >= 0 else s16k[-lag:-lag + len(a)].astype(np.float64)
        assert lossy.rate == 16000 and np.corrcoef(a, b)[0, 1] > 0.95, ext


def test_load_audio_soundfile_and_blender_aud_decode_the_same_samples(tmp_path, sentence, monkeypatch):
    """The same FLAC through both decoders (the CLI outside Blender, Blender's aud inside): equal samples."""
    sf = pytest.importorskip("soundfile", reason="soundfile is the decoder outside Blender")
    pytest.importorskip("bpy", reason="bpy (Blender as a module) provides aud")
    rate, s = sentence
    sf.write(tmp_path / "c.flac", s, rate, format="FLAC")
    script = textwrap.dedent(f"""
        import sys, numpy as np, bpy, aud
        sys.path.insert(0, {str(ROOT)!r})
        from voca_addon.core.speech.audio import load_audio
        np.save({str(tmp_path / 'aud.npy')!r}, load_audio({str(tmp_path / 'c.flac')!r}).samples)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    monkeypatch.setitem(sys.modules, "aud", None)                # here: the decoder outside Blender
    np.testing.assert_array_equal(np.load(tmp_path / "aud.npy"), au.load_audio(tmp_path / "c.flac").samples)


def test_load_audio_without_decoder_names_soundfile(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "aud", None)
    monkeypatch.setitem(sys.modules, "soundfile", None)
    (tmp_path / "speech.flac").write_bytes(b"fLaC" + bytes(500))
    refused(tmp_path / "speech.flac", r"pip install soundfile.*ffmpeg -i")


def test_select_channel_picks_mixes_and_refuses(tmp_path, sentence):
    rate, s = sentence
    stereo = np.stack([np.zeros_like(s), s], axis=1)
    clip = au.load_audio(write_wav(tmp_path / "st.wav", stereo, rate))
    right = au.select_channel(clip, 1)
    assert right.channels == 1 and right.rate == rate and np.array_equal(right.samples, s.astype(np.float64))
    np.testing.assert_array_equal(au.select_channel(clip, "mix").samples, s.astype(np.float64) / 2)
    with pytest.raises(AudioError, match=r"channel 0 of its 2 channels is silent.*'mix'.*--channel N\|mix"):
        au.select_channel(clip, 0)
    with pytest.raises(InputError, match=r"channel 2 does not exist"):
        au.select_channel(clip, 2)
