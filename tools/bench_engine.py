"""``python -m voca_addon bench``: speed and memory of the engine against TensorFlow, in one run.

Development tool (needs the repository checkout, its ``.venv`` with TensorFlow, and ``../shared/data``).
It builds full-size random-weight models in the official formats (DeepSpeech 0.1.0 ``.pb``, VOCA
checkpoint written by the official graph's Saver), concatenates real VOCASET speech into clips of the
requested lengths, and times, each in a fresh process:

* ours: model load (first = parse + cache, then cached), the whole pipeline (audio → vertices), its
  stages, peak resident memory, and the LSTM recurrence against the memory-bandwidth floor (one
  [1×n_cell]·[n_cell×4n_cell] float32 product per step and direction, measured in the same process);
* TensorFlow: VOCA's own pipeline (resampy, python_speech_features, the frozen DeepSpeech graph, the
  official VOCA graph), graph load and run.

Not a test: it prints figures and ratios; targets are stated beside them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GEMV_REPEATS = 100


def _fail(msg: str):
    from voca_addon.core.errors import VocaError
    raise VocaError(msg)


def _concat_speech(seconds: float, out: Path) -> Path:
    """Real VOCASET sentences (22 kHz int16) concatenated to ``seconds`` and written as a WAV."""
    from scipy.io import wavfile
    clips = sorted((SHARED / "audio" / "vocaset").glob("*/sentence0*.wav"))
    parts, total, rate = [], 0, None
    while total < seconds * (rate or 1) or rate is None:
        for c in clips:
            r, x = wavfile.read(c)
            rate = rate or r
            parts.append(x[:, 0] if x.ndim > 1 else x)
            total += len(parts[-1])
            if total >= seconds * rate:
                break
    signal = np.concatenate(parts)[: int(seconds * rate)]
    wavfile.write(out, rate, signal.astype(np.int16))
    return out


def _run_json(args, env=None) -> dict:
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", **(env or {})))
    if r.returncode != 0:
        _fail(f"benchmark step {' '.join(map(str, args[:3]))} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def ours(wav: str, pb: str, prefix: str, template: str, cache: str) -> dict:
    """One measurement of our engine (run in a fresh process by :func:`main`)."""
    from voca_addon.core import engine
    from voca_addon.core.flame import meshio
    from voca_addon.core.models import modelfiles
    t0 = time.perf_counter()
    ds = modelfiles.load_deepspeech(pb, cache)
    vm = modelfiles.load_voca(prefix, cache)
    load = time.perf_counter() - t0
    tmpl = meshio.read_mesh(template).vertices
    stamps = []
    t0 = time.perf_counter()
    anim = engine.run(wav, ds, vm, tmpl, 3,
                      progress=lambda f, stage: stamps.append((time.perf_counter(), stage)))
    verts = anim.vertices()
    total = time.perf_counter() - t0
    rec = [t for t, s in stamps if s == engine.STAGE_DEEPSPEECH]
    kh = np.ascontiguousarray(ds.lstm("fw")[1])
    h, z = np.random.default_rng(0).standard_normal(ds.n_cell).astype(np.float32), np.empty(kh.shape[1], np.float32)
    times = []
    for _ in range(GEMV_REPEATS):
        t = time.perf_counter()
        np.dot(h, kh, out=z)
        times.append(time.perf_counter() - t)
    return dict(load_s=load, total_s=total, frames=int(verts.shape[0]),
                recurrent_s=rec[-1] - rec[0], recurrent_steps=len(rec) - 1,
                gemv_floor_ms=float(np.median(times)) * 1e3, kernel_mib=kh.nbytes / 2**20,
                peak_rss_mb=_peak_rss_mb())


def tensorflow_reference(wav: str, pb: str, prefix: str, template: str, optimize: str) -> dict:
    """VOCA's own pipeline with TensorFlow, run twice (run in a fresh process by :func:`main`).

    ``optimize="1"``: TensorFlow's default session (Grappler on), as VOCA runs it; ``"0"``: Grappler
    and constant folding off, TF's fastest setting here.
    """
    from tests.reference import tf_deepspeech as R
    from tests.reference import tf_voca as V
    from voca_addon.core.flame import meshio
    tmpl = meshio.read_mesh(template).vertices
    t0 = time.perf_counter()
    ds = R.FrozenDeepSpeech(pb, optimize=optimize == "1")
    vm = V.OfficialVoca(prefix)
    load = time.perf_counter() - t0
    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        audio, duration = R.read_audio_16k_int16(wav)
        logits = ds.run(R.audio_to_inputs(audio).astype(np.float32))
        frames = int(round(duration * R.VOCA_FPS))
        windows = R.make_windows(R.interpolate_features(logits, R.DS_FPS, R.VOCA_FPS, frames))
        verts = vm.run(windows, 2, tmpl)
        runs.append(time.perf_counter() - t0)
    return dict(load_s=load, first_s=runs[0], warm_s=runs[1], frames=int(verts.shape[0]),
                peak_rss_mb=_peak_rss_mb())


def _models(work: Path) -> tuple:
    if not (ROOT / "tests" / "reference").is_dir() or not SHARED.is_dir():
        _fail(f"the benchmark needs the repository checkout with ../shared/data beside it ({SHARED})")
    print("building full-size random-weight models in the official formats (cached in "
          f"{work}) ...", flush=True)
    pb = _run_json(["-m", "tools.bench_engine", "_ensure_pb", str(work)])["path"]
    prefix = _run_json(["-m", "tools.bench_engine", "_ensure_voca", str(work)])["path"]
    return pb, prefix


def _print_row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<44}{value:>14}  {note}")


def blender_figures() -> None:
    """Writing into Blender, .blend size, playback (bpy module, fresh process)."""
    r = _run_json(["-m", "tools.bench_blender_writer", str(SHARED / "flame" / "FLAME_sample.ply")])
    print("\nBlender (bpy 5.0.1 module), 50 keys + bias on FLAME_sample, 60 fps:")
    _print_row("write 60 s of animation", f"{r['write_60s_s']:.3f} s", "target < 0.5 s")
    _print_row(".blend size per minute of animation", f"{r['blend_per_minute_mb']:.2f} MB",
               f"target < 5 MB (head mesh alone {r['blend_head_only_mb']:.2f} MB; "
               f"with 1 min {r['blend_1min_mb']:.2f} MB)")
    _print_row("time per frame change (frame_set)", f"{r['frame_change_ms']:.2f} ms")


def main(seconds_list, with_tf: bool = True, work=None, blender: bool = True) -> None:
    if blender:
        blender_figures()
    work = Path(work) if work else ROOT / ".cache" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    pb, prefix = _models(work)
    template = str(SHARED / "flame" / "FLAME_sample.ply")
    cache = tempfile.mkdtemp(prefix="voca-bench-cache-")
    for seconds in seconds_list:
        wav = str(_concat_speech(seconds, work / f"speech_{seconds:g}s.wav"))
        first = _run_json(["-m", "tools.bench_engine", "_ours", wav, pb, prefix, template, cache])
        cached = _run_json(["-m", "tools.bench_engine", "_ours", wav, pb, prefix, template, cache])
        print(f"\n{seconds:g} s of speech ({cached['frames']} frames at 60 fps), 2 cores:")
        _print_row("ours: model load, first (parse + cache)", f"{first['load_s']:.2f} s")
        _print_row("ours: model load, cached", f"{cached['load_s']:.2f} s", "target < 2 s")
        _print_row("ours: audio → vertices", f"{cached['total_s']:.2f} s",
                   f"{cached['total_s'] / seconds:.3f}× real time" + ("; target ≤ 3 s" if seconds == 10 else ""))
        floor = cached["gemv_floor_ms"] * cached["recurrent_steps"] / 1e3
        _print_row("ours: LSTM recurrence", f"{cached['recurrent_s']:.2f} s",
                   f"floor {floor:.2f} s ({cached['gemv_floor_ms']:.2f} ms per {cached['kernel_mib']:.0f} MiB "
                   f"product) → {100 * floor / cached['recurrent_s']:.0f}% of the bandwidth floor")
        _print_row("ours: peak resident memory", f"{cached['peak_rss_mb']:.0f} MB")
        if with_tf:
            for optimize, label in (("1", "TF default session (as VOCA runs it)"),
                                    ("0", "TF, graph optimiser off (TF's fastest here)")):
                ref = _run_json(["-m", "tools.bench_engine", "_tf", wav, pb, prefix, template, optimize])
                print(f"  {label}:")
                _print_row("  graph load", f"{ref['load_s']:.2f} s")
                _print_row("  audio → vertices, first run", f"{ref['first_s']:.2f} s",
                           f"{ref['first_s'] / seconds:.2f}× real time; ours is "
                           f"{ref['first_s'] / cached['total_s']:.1f}× faster (target ≥ 5×)")
                _print_row("  audio → vertices, second run", f"{ref['warm_s']:.2f} s",
                           f"ours is {ref['warm_s'] / cached['total_s']:.1f}× faster")
                _print_row("  peak resident memory", f"{ref['peak_rss_mb']:.0f} MB")


def _subcommand(argv) -> None:
    cmd, rest = argv[0], argv[1:]
    if cmd == "_ensure_pb":
        from tests.reference import tf_deepspeech as R
        out = {"path": str(R.ensure_deepspeech_pb(rest[0], n_hidden=2048, seed=0))}
    elif cmd == "_ensure_voca":
        from tests.reference import tf_voca as V
        out = {"path": str(V.ensure_voca_checkpoint(rest[0], seed=0))}
    elif cmd == "_ours":
        out = ours(*rest)
    elif cmd == "_tf":
        out = tensorflow_reference(*rest)
    else:
        raise SystemExit(f"unknown bench step {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    _subcommand(sys.argv[1:])
