"""One real Blender window for the whole GUI suite: started once, its findings shared by every test.

The window is a Debian Blender (built with audio) in a chroot under Xvfb, made by
``../shared/tools/blender-gui/setup.sh`` (root and the Debian package registry; once per machine, then
reused) and run by its ``run.sh``: trixie's 4.3 (Python 3.13) by default, sid's 5.2 LTS (Python 3.14)
with ``BLENDER_GUI_SUITE=sid`` (:data:`SUITES`). The session fixture builds the extension zip a Linux user
of that Blender gets (linux-x64, the zip carrying its Python), writes a 41 s speech clip (the reference
sentence eight times, in the pytest temporary folder: long enough to watch the progress and press Esc
mid-run), starts Blender with :mod:`gui_driver` and collects ``report.json``, the screenshots and
Blender's output. When every selected test is marked ``smoke`` (``pytest -m smoke tests/gui``), Blender
runs only :data:`SMOKE_SCENARIOS`.

Without the tools, root or the registry the tests skip with that reason; ``VOCA_GUI_REQUIRED=1`` (CI)
turns the skip into a failure. ``VOCA_GUI_SCREENSHOTS=DIR`` copies the pictures meant for the user guide
(``gui-*.png``) into DIR (``make docs-screenshots``). ``VOCA_GUI_ZIP=PATH`` tests that extension zip
instead of building one from the working tree.

Contract: the pytest side; never imports ``bpy``. Blender's files stay in the temporary folder.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import wave
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("VOCA_BLENDER_GUI_TOOLS", ROOT.parent / "shared" / "tools" / "blender-gui"))
DRIVER = Path(__file__).resolve().parent / "gui_driver.py"
SCREEN = "1400x1600"            # Xvfb screen: tall enough for the VOCA tab with every sub-panel open
SESSION_LIMIT = 600             # s: Blender is stopped after this (run.sh's timeout)
SETUP_LIMIT = 1800              # s: making the chroot (download + install, ~1 min on a fast line)
SUITE = os.environ.get("BLENDER_GUI_SUITE", "trixie")     # setup.sh / run.sh read the same variable
SUITES = {"trixie": "4.3", "sid": "5.2"}    # Debian suite → the Blender line it ships (the window tested)
# The scenarios of the smoke subset (make test runs it on 4.3; the whole suite on 5.2): set-up, the full
# run compared with the engine, and the Character scenario (Fit with Esc, Fit, Transfer, Guess).
SMOKE_SCENARIOS = ("window_setup", "install", "preferences", "voca_tab", "settings", "animate", "character")
CLIP_REPEATS = 8                # the reference sentence (5.1 s) this many times: a 41 s clip
START_FRAME = 10                # the run's start frame (not the scene's start: the panel's option)
CONDITION = 5                   # speaking style chosen in the panel
RERUN_CONDITION = 2             # the style of the second run (the one undone and redone)
EMOTION, STRENGTH, EASE = "happy", 0.8, 6
DOC_PICTURES = ("gui-panel.png", "gui-emotions.png", "gui-model-files.png",
                "gui-progress.png", "gui-error.png", "gui-not-flame.png", "gui-internal-error.png")


@dataclass
class GuiSession:
    """What one Blender session left: its report, stdout+stderr, output folder, run time and inputs."""
    report: dict
    output: str
    out: Path
    seconds: float
    config: dict

    def scenario(self, name: str) -> dict:
        entry = self.report["scenarios"].get(name)
        assert entry is not None, f"scenario {name} did not run; Blender's output:\n{self.output[-4000:]}"
        if "error" in entry:
            first = next(n for n in self.report["order"] if "error" in self.report["scenarios"][n])
            cause = "" if first == name else \
                f"\n\nthe first failing scenario, {first}:\n{self.report['scenarios'][first]['error']}"
            pytest.fail(f"scenario {name} failed inside Blender:\n{entry['error']}{cause}\n"
                        f"Blender's output (end):\n{self.output[-3000:]}")
        return entry


def pinned(package: str, python: str):
    """The version vendor_requirements.txt bundles of ``package`` for ``python`` (None: no wheel)."""
    spec = importlib.util.spec_from_file_location("build_extension", ROOT / "tools" / "build_extension.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    found = [r.split("==")[1] for r, p in tool.vendor_requirements() if p == python and r.startswith(package + "==")]
    return found[0] if found else None


def _unavailable(reason: str):
    if os.environ.get("VOCA_GUI_REQUIRED") == "1":
        pytest.fail(f"GUI suite required (VOCA_GUI_REQUIRED=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def gui_chroot() -> Path:
    """The chroot with Blender 4.3, Xvfb, xdotool and ImageMagick (made by setup.sh when missing)."""
    if not (TOOLS / "run.sh").is_file() or not (TOOLS / "setup.sh").is_file():
        _unavailable(f"the blender-gui tools are not at {TOOLS} (set VOCA_BLENDER_GUI_TOOLS)")
    if os.geteuid() != 0:
        _unavailable("the real-window suite needs root (a chroot with Debian's Blender under Xvfb)")
    done = subprocess.run([str(TOOLS / "setup.sh")], capture_output=True, text=True, timeout=SETUP_LIMIT)
    if done.returncode != 0 or not done.stdout.strip():
        _unavailable(f"setup.sh could not make the chroot (no Debian package registry?): "
                     f"{(done.stderr or done.stdout).strip()[-500:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def chroot_python(root: Path) -> str:
    """The chroot's system Python as "X.Y" (Debian's Blender runs it)."""
    done = subprocess.run(["chroot", str(root), "python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def write_clip(source: Path, target: Path, repeats: int = CLIP_REPEATS) -> Path:
    """``source`` (a PCM WAV) ``repeats`` times in a row, same format."""
    with wave.open(str(source), "rb") as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        out.writeframes(frames * repeats)
    return target


def build_zip(out: Path, python: str) -> Path:
    """The extension as a Linux user of a Blender running ``python`` gets it: the linux-x64 zip that
    carries that Python's wheels (``tools/build_extension.py --platform linux-x64 --python X.Y``)."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "build_extension.py"), "--out", str(out),
                           "--platform", "linux-x64", "--python", python], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    archives = sorted(out.glob("voca_addon-*.zip"))
    assert len(archives) == 1, [a.name for a in archives]
    return archives[0]


def without_wheels(archive: Path, target: Path) -> Path:
    """The same extension with no bundled wheels: ``wheels/`` left out, the manifest's ``wheels`` and
    ``platforms`` dropped. Installed only when Blender refuses ``archive`` for its Python version (a
    distribution's Blender runs its system Python; the wheels are built for Blender's own), so that
    the rest of the suite still runs; the install test fails on the refusal all the same."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            if item.filename.startswith("wheels/"):
                continue
            data = source.read(item.filename)
            if item.filename == "blender_manifest.toml":
                text = re.sub(r"(?ms)^wheels\s*=\s*\[.*?^\]\s*$", "", data.decode("utf-8"))
                data = re.sub(r"(?m)^platforms\s*=.*$", "", text).encode("utf-8")
            out.writestr(item, data)
    return target


def session_config(out: Path, archive: Path, voca_ckpt, ds_small_pb, shared_data) -> dict:
    return {
        "suite": SUITE, "blender": SUITES.get(SUITE), "out": str(out), "zip": str(archive), "zip_fallback": str(without_wheels(archive, out / "no-wheels.zip")),
        "voca": str(voca_ckpt), "deepspeech": str(ds_small_pb),
        "template": str(shared_data / "flame" / "FLAME_sample.ply"), "arkit": str(shared_data / "arkit"),
        "audio": str(write_clip(shared_data / "audio" / "test_sentence.wav", out / "speech.wav")),
        "condition": CONDITION, "rerun_condition": RERUN_CONDITION, "emotion": EMOTION, "strength": STRENGTH, "ease": EASE,
        "emotion_source": str(shared_data / "emotions" / "seed_emotion_offsets.npz"),
        "start": START_FRAME, "picture_after": 0.3, "missing": str(out / "no-such-folder" / "gstep_52280.model"),
    }


def smoke_only(session) -> bool:
    """Whether every GUI test this run selected is marked ``smoke``."""
    items = [i for i in session.items if Path(str(i.fspath)).parent == Path(__file__).parent]
    return bool(items) and all(i.get_closest_marker("smoke") for i in items)


@pytest.fixture(scope="session")
def gui_zip(gui_chroot, tmp_path_factory) -> Path:
    """The extension zip every window session of this run installs (built once)."""
    if os.environ.get("VOCA_GUI_ZIP"):
        return Path(os.environ["VOCA_GUI_ZIP"]).resolve()
    return build_zip(tmp_path_factory.mktemp("gui-dist"), chroot_python(gui_chroot))


def run_window(out: Path, config: dict, binds) -> tuple:
    """Start Blender's window with :mod:`gui_driver` on ``config`` (written to ``out/config.json``) and wait
    for it to end; returns (Blender's exit status, its stdout + stderr, seconds, the time.time() it ended)."""
    (out / "config.json").write_text(json.dumps(config, indent=1))
    command = [str(TOOLS / "run.sh"), "-t", str(SESSION_LIMIT), "-s", SCREEN]
    for path in sorted({str(p) for p in binds}):
        command += ["-b", path]
    command += ["--", "--factory-startup", "--python", str(DRIVER), "--", str(out / "config.json")]
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(out / "user"), VOCA_CACHE_DIR=str(out / "cache"),
               VOCA_MODEL_DIR=str(out / "no-models"), PYTHONUNBUFFERED="1")
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=SESSION_LIMIT + 120)
    ended = time.time()
    output = done.stdout + done.stderr
    (out / "blender-output.txt").write_text(output)
    return done.returncode, output, time.monotonic() - started, ended


def read_report(out: Path, status: int, output: str) -> dict:
    report_path = out / "report.json"
    assert report_path.is_file(), f"Blender wrote no report (exit {status}):\n{output[-4000:]}"
    return json.loads(report_path.read_text())


@pytest.fixture(scope="session")
def gui(request, gui_zip, voca_ckpt, ds_small_pb, shared_data, tmp_path_factory) -> GuiSession:
    """Run the scenario list (all, or the smoke subset) in one real Blender window; their findings."""
    out = tmp_path_factory.mktemp("gui")
    archive = gui_zip
    config = session_config(out, archive, voca_ckpt, ds_small_pb, shared_data)
    config["scenarios"] = list(SMOKE_SCENARIOS) if smoke_only(request.session) else None
    binds = (out, shared_data, archive.parent, Path(voca_ckpt).parent, Path(ds_small_pb).parent)
    status, output, seconds, _ = run_window(out, config, binds)
    report = read_report(out, status, output)
    assert report.get("finished"), f"Blender stopped before the last scenario (exit {status}):\n" \
                                    f"{output[-4000:]}"
    pictures = os.environ.get("VOCA_GUI_SCREENSHOTS")
    if pictures:
        Path(pictures).mkdir(parents=True, exist_ok=True)
        for name in DOC_PICTURES:
            if (out / name).is_file():
                shutil.copyfile(out / name, Path(pictures) / name)
    version = report["scenarios"].get("window_setup", {}).get("version", "?")
    SESSIONS.append((seconds, out, version, "smoke subset" if config["scenarios"] else "whole suite"))
    return GuiSession(report, output, out, seconds, config)


SESSIONS: list = []


def pytest_terminal_summary(terminalreporter):
    for seconds, out, version, what in SESSIONS:
        terminalreporter.write_line(f"GUI suite ({what}): one Blender {version} window session took "
                                    f"{seconds:.1f} s (files in {out})")
