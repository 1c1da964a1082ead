"""The extension zips: built by tools/build_extension.py (one per platform and Python line), accepted by
Blender's validator, each at most 120 MB, together carrying scipy for CPython 3.11, 3.13 and 3.14,
PocketSphinx for 3.11 and 3.13 and threadpoolctl for all on every platform; and this interpreter's zip
installed and enabled by Blender itself (in a subprocess with its own user-resources folder, so this
process's Blender state and the developer's real preferences are never touched), importing the bundled
wheels."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

if importlib.util.find_spec("bpy") is None:
    pytest.skip("bpy is not installed (make venv)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
MODULE = "bl_ext.user_default.voca_addon"
_spec = importlib.util.spec_from_file_location("build_extension", ROOT / "tools" / "build_extension.py")
TOOL = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(TOOL)
PLATFORMS = {"linux-x64", "macos-arm64", "macos-x64", "windows-x64"}
PYTHONS = {"3.11", "3.13", "3.14"}
SPHINX_PYTHONS = {"3.11", "3.13"}           # PocketSphinx 5.1.1 has no cp314 wheel
MAX_BYTES = 120 * 10**6

INSTALL = textwrap.dedent(f"""
    import importlib, json, os, sys
    import bpy
    result = bpy.ops.extensions.package_install_files(
        filepath=sys.argv[1], repo='user_default', enable_on_install=True)
    enabled = {MODULE!r} in bpy.context.preferences.addons
    package = importlib.import_module({MODULE!r})
    engine = importlib.import_module({MODULE!r} + '.core.engine')
    writer = importlib.import_module({MODULE!r} + '.blender.speech.writer')
    sphinx = importlib.import_module({MODULE!r} + '.core.phonemes.sphinx')
    blas = importlib.import_module({MODULE!r} + '.core.speech.blas')
    # The wheels' folder: Blender appends it to sys.path on install, and puts it before site-packages at
    # its next start; do the latter here, so this environment's own scipy / pocketsphinx cannot answer.
    wheels = [p for p in sys.path if p.replace(chr(92), '/').endswith('/extensions/.local/lib/python'
              + '.'.join(map(str, sys.version_info[:2])) + '/site-packages')]
    for path in wheels:
        sys.path.remove(path)
    sys.path[:0] = wheels
    import scipy, scipy.sparse.linalg, scipy.spatial
    import threadpoolctl
    controller = blas.controller()      # Blender's numpy's BLAS, whose threads the engine can lend
    limits = controller and [blas.threads(controller), [c.internal_api for c in controller.lib_controllers]]
    detector = sphinx.detector_available()
    pocketsphinx = importlib.import_module('pocketsphinx') if detector[0] else None
    model = pocketsphinx and pocketsphinx.get_model_path('en-us/en-us.lm.bin')
    model = model and [model, os.path.isfile(model)]
    try:
        import voca_addon
        repo_visible = True
    except ImportError:
        repo_visible = False
    bpy.ops.preferences.addon_disable(module={MODULE!r})
    print(json.dumps(dict(result=sorted(result), enabled=enabled, version=package.__version__,
                          engine=engine.__file__, writer=writer.__file__, repo_visible=repo_visible,
                          scipy=[scipy.__version__, scipy.__file__], detector=detector,
                          pocketsphinx=pocketsphinx and pocketsphinx.__file__, model=model,
                          threadpoolctl=threadpoolctl.__file__, limits=limits,
                          disabled={MODULE!r} not in bpy.context.preferences.addons)))
    importlib.import_module({MODULE!r} + '.blender.compat').exit_now(0)   # the bpy module: no unsafe teardown
""")


def build(out: Path, every: bool = False) -> tuple:
    """Run the build: this interpreter's zip (``--host``), or ``every`` zip; (the run, this interpreter's zip)."""
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "build_extension.py"), "--out", str(out),
                          *(() if every else ("--host",))], cwd=ROOT, capture_output=True, text=True, timeout=600)
    (platform, pythons), = TOOL.planned_zips(*TOOL.host())
    return run, out / TOOL.zip_name(TOOL.read_version(), platform, pythons)


def manifest(archive: Path) -> dict:
    with zipfile.ZipFile(archive) as zf:
        return tomllib.loads(zf.read("blender_manifest.toml").decode("utf-8"))


def wheel_names(archive: Path) -> list:
    return sorted(Path(n).name for n in zipfile.ZipFile(archive).namelist() if n.endswith(".whl"))


def pinned(package: str, python: str) -> str:
    """The version vendor_requirements.txt pins for ``package`` on ``python``."""
    found = [r.split("==")[1] for r, p in TOOL.vendor_requirements() if p == python and r.startswith(package + "==")]
    assert len(found) == 1, (package, python, found)
    return found[0]


def blender_validator():
    """Blender's own extension tool (``blender_ext.py`` of the installed bpy), loaded as a module."""
    spec = importlib.util.spec_from_file_location("blender_ext", TOOL.find_validator())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    run, archive = build(tmp_path_factory.mktemp("dist"))
    assert run.returncode == 0, run.stdout + run.stderr
    return run, archive


@pytest.mark.smoke
def test_extension_build_validates(built):
    run, archive = built
    assert archive.is_file() and "validation passed" in run.stdout, run.stdout + run.stderr


def test_extension_build_layout(built):
    archive = built[1]
    names = zipfile.ZipFile(archive).namelist()
    assert {"blender_manifest.toml", "__init__.py", "core/animation/shapekeys.py", "blender/speech/writer.py", "headless.py",
            "cli/main.py", "cli/batch/worker.py",
            "blender/__init__.py"} <= set(names)
    assert not [n for n in names if n.startswith("voca_addon/") or "__pycache__" in n
                or n.endswith(".pyc") or n == "bench.py" or n.startswith("tests/")]
    platform, python = TOOL.host()
    data = manifest(archive)
    assert data["platforms"] == [platform]
    assert sorted(Path(w).name for w in data["wheels"]) == wheel_names(archive)
    assert all(n in names for n in (w[2:] for w in data["wheels"]))
    assert f"scipy-{pinned('scipy', python)}-cp{python.replace('.', '')}" in " ".join(wheel_names(archive))


def test_extension_build_is_reproducible(built, tmp_path):
    run, again = build(tmp_path)
    assert run.returncode == 0 and again.read_bytes() == built[1].read_bytes()


def test_extension_zips_every_platform_and_python(tmp_path):
    """All zips (8: four platforms × two Python lines) pass Blender's validator, weigh ≤ 120 MB each, and
    the Pythons Blender derives from each zip's wheels (its own code) cover 3.11, 3.13 and 3.14 on every
    platform with scipy, PocketSphinx for 3.11 and 3.13, threadpoolctl for all."""
    run, _ = build(tmp_path, every=True)
    assert run.returncode == 0 and "validation passed" in run.stdout, run.stdout + run.stderr
    blender_ext = blender_validator()
    archives = sorted(tmp_path.glob("voca_addon-*.zip"))
    assert len(archives) == 8, [a.name for a in archives]
    served = {}                             # (platform, Python) → the wheels Blender would install
    for archive in archives:
        assert archive.stat().st_size <= MAX_BYTES, (archive.name, archive.stat().st_size)
        data = manifest(archive)
        platform, = data["platforms"]
        derived = blender_ext.python_versions_from_wheels(data["wheels"])
        assert not isinstance(derived, str), derived
        for version in derived:
            python = ".".join(map(str, version))
            assert (platform, python) not in served, f"two zips for {platform} on Python {python}"
            served[platform, python] = [w for w in wheel_names(archive) if TOOL.wheel_python(w) in (python, None)]
            assert all(platform in TOOL.wheel_platforms(w) for w in served[platform, python])
    assert set(served) == {(p, v) for p in PLATFORMS for v in PYTHONS}
    for (platform, python), wheels in served.items():
        names = sorted(w.split("-")[0] + "-" + w.split("-")[1] for w in wheels)
        expected = [f"scipy-{pinned('scipy', python)}", f"threadpoolctl-{pinned('threadpoolctl', python)}"]
        if python in SPHINX_PYTHONS:
            expected.insert(0, f"pocketsphinx-{pinned('pocketsphinx', python)}")
        assert names == expected, (platform, python, names)


@pytest.mark.smoke
def test_extension_build_installs_and_enables(built, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BLENDER_USER_CONFIG")}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "user")
    run = subprocess.run([sys.executable, "-c", INSTALL, str(built[1])], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    extensions = tmp_path / "user" / "extensions"
    installed = extensions / "user_default" / "voca_addon"
    assert report["result"] == ["FINISHED"] and report["enabled"] and report["disabled"]
    assert report["version"] == "0.1.0" and not report["repo_visible"]
    assert Path(report["engine"]).is_relative_to(installed)
    assert Path(report["writer"]).is_relative_to(installed)
    # The bundled wheels, not this environment's copies: Blender puts them before site-packages.
    python = TOOL.host()[1]
    wheels = extensions / ".local" / "lib" / f"python{python}" / "site-packages"
    assert report["scipy"][0] == pinned("scipy", python) and Path(report["scipy"][1]).is_relative_to(wheels)
    assert report["detector"] == [True, ""]
    assert Path(report["pocketsphinx"]).is_relative_to(wheels)
    assert Path(report["model"][0]).is_relative_to(wheels) and report["model"][1]    # the model came along
    # threadpoolctl from the zip finds numpy's OpenBLAS inside Blender: the engine can lend the phone pass
    # a core there too (core/speech/blas.py).
    assert Path(report["threadpoolctl"]).is_relative_to(wheels)
    assert report["limits"] and report["limits"][0] >= 1 and "openblas" in report["limits"][1], report["limits"]
