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

Wheels: the manifest's ``wheels`` (scipy, one per platform; see ``vendor_requirements.txt``) are taken
from ``./wheels/`` (git-ignored) and stored under ``wheels/`` in the zip; missing ones are downloaded
first with ``pip download`` (``--fetch-wheels`` forces it). ``--split-platforms`` writes one zip per
platform instead (``voca_addon-<version>-<platform>.zip``, e.g. ``linux_x64``) holding only that
platform's wheel, its manifest narrowed to that platform (Blender's own ``--split-platforms`` layout).

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
WHEELS = ROOT / "wheels"
VENDOR = ROOT / "vendor_requirements.txt"
PYTHON_VERSION = "3.11"                   # Blender 4.2 – 5.0's Python (a requirement without a marker)
PLATFORM_TAGS = {                         # Python → Blender platform → newest pip platform tag accepted
    "3.11": {"linux-x64": "manylinux_2_17_x86_64", "macos-arm64": "macosx_12_0_arm64",
             "macos-x64": "macosx_10_9_x86_64", "windows-x64": "win_amd64"},
    # Blender 5.1+ and Linux distributions' Blenders (Debian's 4.3): scipy's cp313 macOS wheels need 14.0
    "3.13": {"linux-x64": "manylinux_2_17_x86_64", "macos-arm64": "macosx_14_0_arm64",
             "macos-x64": "macosx_14_0_x86_64", "windows-x64": "win_amd64"},
}
WHEEL_PLATFORM = {                        # a pattern in the wheel's file name → Blender platform
    r"manylinux": "linux-x64", r"macosx_\d+_\d+_arm64": "macos-arm64", r"macosx_\d+_\d+_x86_64": "macos-x64",
    r"win_amd64": "windows-x64",
}


def read_version() -> str:
    """The manifest's version, checked against ``voca_addon.__version__``."""
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    source = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__\s*=\s*"([^"]+)"', source, re.M)
    if not found or found.group(1) != manifest["version"]:
        sys.exit(f"version mismatch: blender_manifest.toml says {manifest['version']!r}, "
                 f"voca_addon/__init__.py says {found.group(1) if found else None!r}; make them equal")
    return manifest["version"]


def manifest_wheels() -> list:
    """The wheel paths the manifest lists (``./wheels/…``)."""
    return list(tomllib.loads(MANIFEST.read_text(encoding="utf-8")).get("wheels", []))


def wheel_platform(name: str) -> str:
    for pattern, platform in WHEEL_PLATFORM.items():
        if re.search(pattern, name):
            return platform
    sys.exit(f"wheel {name}: unknown platform; add it to WHEEL_PLATFORM in tools/build_extension.py")


def vendor_requirements() -> list:
    """(requirement, Python version) per line of vendor_requirements.txt (``; python_version == "3.13"``
    picks the Python; without a marker, :data:`PYTHON_VERSION`)."""
    out = []
    for line in VENDOR.read_text().splitlines():
        requirement, _, marker = line.split("#")[0].partition(";")
        if requirement.strip():
            found = re.search(r'python_version\s*==\s*["\']([\d.]+)["\']', marker)
            out.append((requirement.strip(), found.group(1) if found else PYTHON_VERSION))
    return out


def fetch_wheels(force: bool = False) -> None:
    """``pip download`` each requirement of vendor_requirements.txt for every platform into ./wheels/."""
    missing = [w for w in manifest_wheels() if not (ROOT / w).is_file()]
    if not (missing or force):
        return
    for requirement, python in vendor_requirements():
        for tag in PLATFORM_TAGS[python].values():
            subprocess.run([sys.executable, "-m", "pip", "download", requirement, "--only-binary=:all:",
                            "--no-deps", "--python-version", python, "--implementation", "cp",
                            "--abi", "cp" + python.replace(".", ""), "--platform", tag,
                            "--dest", str(WHEELS), "-q"], check=True)
    missing = [w for w in manifest_wheels() if not (ROOT / w).is_file()]
    if missing:
        sys.exit(f"the manifest lists wheels pip did not download: {missing}; update blender_manifest.toml "
                 "to the files in ./wheels/")


def narrowed_manifest(platform: str) -> bytes:
    """The manifest with ``platforms`` and ``wheels`` narrowed to one platform."""
    text = MANIFEST.read_text(encoding="utf-8")
    keep = [w for w in manifest_wheels() if wheel_platform(w) == platform]
    text = re.sub(r"^platforms = \[.*?\]$", f'platforms = ["{platform}"]', text, flags=re.M)
    text = re.sub(r"^wheels = \[.*?^\]$", "wheels = [\n" + "".join(f'  "{w}",\n' for w in keep) + "]",
                  text, flags=re.M | re.S)
    return text.encode("utf-8")


def package_files(platform: str | None = None) -> list:
    """(path on disk, name in the zip) for every shipped file, sorted (wheels: all, or ``platform``'s)."""
    files = []
    for path in sorted(PACKAGE.rglob("*")):
        rel = path.relative_to(PACKAGE)
        if path.is_dir() or set(rel.parts) & EXCLUDE_NAMES or path.name.endswith(EXCLUDE_SUFFIXES):
            continue
        files.append((path, rel.as_posix()))
    wheels = [(ROOT / w, w[2:] if w.startswith("./") else w) for w in manifest_wheels()
              if platform is None or wheel_platform(w) == platform]
    return [(MANIFEST, MANIFEST.name)] + files + wheels


def build(out_dir: Path, platform: str | None = None) -> Path:
    """Write ``<out_dir>/voca_addon-<version>[-<platform>].zip`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = f"-{platform.replace('-', '_')}" if platform else ""
    target = out_dir / f"voca_addon-{read_version()}{suffix}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in package_files(platform):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            stored = name.endswith(".whl")                       # wheels are zips already
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            data = narrowed_manifest(platform) if platform and path == MANIFEST else path.read_bytes()
            archive.writestr(info, data)
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
    parser.add_argument("--split-platforms", action="store_true", help="one zip per platform, each with "
                        "only its own wheel")
    parser.add_argument("--fetch-wheels", action="store_true", help="download the wheels again")
    args = parser.parse_args(argv)
    fetch_wheels(force=args.fetch_wheels)
    platforms = sorted({wheel_platform(w) for w in manifest_wheels()}) if args.split_platforms else [None]
    archives = [build(args.out, platform) for platform in platforms]
    for archive in archives:
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
    status = max(validate(archive, validator) for archive in archives)
    print("validation " + ("passed" if status == 0 else f"FAILED (exit {status})"))
    return status


if __name__ == "__main__":
    sys.exit(main())
