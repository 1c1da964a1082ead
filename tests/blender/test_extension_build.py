"""The extension zip: built by tools/build_extension.py, accepted by Blender's validator, and installed
and enabled by Blender itself (in a subprocess with its own user-resources folder, so this process's
Blender state and the developer's real preferences are never touched)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

if importlib.util.find_spec("bpy") is None:
    pytest.skip("bpy is not installed (make venv)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
MODULE = "bl_ext.user_default.voca_addon"

INSTALL = textwrap.dedent(f"""
    import importlib, json, sys
    import bpy
    result = bpy.ops.extensions.package_install_files(
        filepath=sys.argv[1], repo='user_default', enable_on_install=True)
    enabled = {MODULE!r} in bpy.context.preferences.addons
    package = importlib.import_module({MODULE!r})
    engine = importlib.import_module({MODULE!r} + '.core.engine')
    writer = importlib.import_module({MODULE!r} + '.blender.writer')
    try:
        import voca_addon
        repo_visible = True
    except ImportError:
        repo_visible = False
    bpy.ops.preferences.addon_disable(module={MODULE!r})
    print(json.dumps(dict(result=sorted(result), enabled=enabled, version=package.__version__,
                          engine=engine.__file__, writer=writer.__file__, repo_visible=repo_visible,
                          disabled={MODULE!r} not in bpy.context.preferences.addons)))
    importlib.import_module({MODULE!r} + '.blender.compat').exit_now(0)   # the bpy module: no unsafe teardown
""")


def build(out: Path) -> tuple:
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "build_extension.py"), "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    return run, out / "voca_addon-0.1.0.zip"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    run, archive = build(tmp_path_factory.mktemp("dist"))
    assert run.returncode == 0, run.stdout + run.stderr
    return run, archive


def test_extension_build_validates(built):
    run, archive = built
    assert archive.is_file() and "validation passed" in run.stdout, run.stdout + run.stderr


def test_extension_build_layout(built):
    names = zipfile.ZipFile(built[1]).namelist()
    assert {"blender_manifest.toml", "__init__.py", "core/animation/shapekeys.py", "blender/writer.py",
            "blender/__init__.py"} <= set(names)
    assert not [n for n in names if n.startswith("voca_addon/") or "__pycache__" in n
                or n.endswith(".pyc") or n == "bench.py" or n.startswith("tests/")]


def test_extension_build_is_reproducible(built, tmp_path):
    run, again = build(tmp_path)
    assert run.returncode == 0 and again.read_bytes() == built[1].read_bytes()


def test_extension_build_installs_and_enables(built, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BLENDER_USER_CONFIG")}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "user")
    run = subprocess.run([sys.executable, "-c", INSTALL, str(built[1])], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    installed = tmp_path / "user" / "extensions" / "user_default" / "voca_addon"
    assert report["result"] == ["FINISHED"] and report["enabled"] and report["disabled"]
    assert report["version"] == "0.1.0" and not report["repo_visible"]
    assert Path(report["engine"]).is_relative_to(installed)
    assert Path(report["writer"]).is_relative_to(installed)
