"""Build the Blender extension zip and check it with Blender's own validator.

``python tools/build_extension.py [--out dist] [--no-validate]`` writes ``dist/voca_addon-<version>.zip``:

* ``blender_manifest.toml`` (repository top level) at the zip root;
* the contents of the ``voca_addon`` package at the zip root too — Blender installs the zip's root as
  the package ``bl_ext.<repo>.voca_addon``, so ``__init__.py`` must sit next to the manifest, not in a
  ``voca_addon/`` folder. The package imports itself only relatively (``from .core ...``), so it works
  under that name;
* left out: ``__pycache__``/``*.pyc``, tests (they live outside the package anyway) and ``bench.py`` / ``bench_blender.py``,
  the development benchmark, which needs the repository checkout, TensorFlow and scipy — none of which
  exist inside Blender (``python -m voca_addon bench`` says so via its lazy import).

The zip is reproducible: sorted entries, fixed timestamps. The manifest's ``version`` must equal
``voca_addon.__version__``. Then Blender's validator runs:
``python <bpy>/<ver>/scripts/addons_core/bl_pkg/cli/blender_ext.py validate <zip>``, found next to the
installed ``bpy`` module (``.venv``); exit status 1 when it fails.

Contract: standard library only (``tomllib``, Python ≥ 3.11); does not import ``bpy`` or the add-on.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "voca_addon"
MANIFEST = ROOT / "blender_manifest.toml"
EXCLUDE_NAMES = {"__pycache__", "bench.py", "bench_blender.py", "tests", ".DS_Store"}
EXCLUDE_SUFFIXES = (".pyc", ".pyo", ".blend1")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)          # fixed timestamp → byte-identical rebuilds


def read_version() -> str:
    """The manifest's version, checked against ``voca_addon.__version__``."""
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    source = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__\s*=\s*"([^"]+)"', source, re.M)
    if not found or found.group(1) != manifest["version"]:
        sys.exit(f"version mismatch: blender_manifest.toml says {manifest['version']!r}, "
                 f"voca_addon/__init__.py says {found.group(1) if found else None!r}; make them equal")
    return manifest["version"]


def package_files() -> list:
    """(path on disk, name in the zip) for every shipped file, sorted."""
    files = []
    for path in sorted(PACKAGE.rglob("*")):
        rel = path.relative_to(PACKAGE)
        if path.is_dir() or set(rel.parts) & EXCLUDE_NAMES or path.name.endswith(EXCLUDE_SUFFIXES):
            continue
        files.append((path, rel.as_posix()))
    return [(MANIFEST, MANIFEST.name)] + files


def build(out_dir: Path) -> Path:
    """Write ``<out_dir>/voca_addon-<version>.zip`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"voca_addon-{read_version()}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in package_files():
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return target


def find_validator() -> Path | None:
    """``blender_ext.py`` of the installed ``bpy`` module, or None."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    return None


def validate(archive: Path, validator: Path) -> int:
    """Run Blender's extension validator on ``archive``; return its exit status."""
    result = subprocess.run([sys.executable, str(validator), "validate", str(archive)],
                            capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument("--no-validate", action="store_true", help="skip Blender's validator")
    parser.add_argument("--validator", type=Path, help="path to blender_ext.py (default: from bpy)")
    args = parser.parse_args(argv)
    archive = build(args.out)
    with zipfile.ZipFile(archive) as zf:
        count = len(zf.namelist())
    print(f"wrote {archive} ({archive.stat().st_size / 1024:.0f} KiB, {count} files)")
    if args.no_validate:
        return 0
    validator = args.validator or find_validator()
    if validator is None or not validator.is_file():
        print("Blender's validator (blender_ext.py) was not found: install bpy (make venv) or pass "
              "--validator PATH, or use --no-validate", file=sys.stderr)
        return 1
    status = validate(archive, validator)
    print("validation " + ("passed" if status == 0 else f"FAILED (exit {status})"))
    return status


if __name__ == "__main__":
    sys.exit(main())
