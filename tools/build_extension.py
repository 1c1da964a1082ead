"""Build the Blender extension zips and check them with Blender's own validator.

``python tools/build_extension.py [--out dist] [--platform P] [--python X.Y] [--no-validate]`` writes one
zip per Blender platform and Python line, ``dist/voca_addon-<version>-<platform>-<pythons>.zip`` (e.g.
``voca_addon-0.1.0-linux_x64-py311.zip`` for Blender 4.2 – 5.0, ``…-linux_x64-py313_py314.zip`` for
Blender 5.1+ and distributions' Blenders on Python 3.13 or 3.14); ``--platform`` / ``--python`` build only
the zip(s) that serve them (``--host`` = this interpreter's platform and Python). Each zip holds:

* ``blender_manifest.toml`` (repository top level) at the zip root, its ``platforms`` and ``wheels``
  narrowed to the zip's platform and Pythons (Blender derives the Pythons an extension accepts from its
  wheels' tags: the union of them);
* the contents of the ``voca_addon`` package at the zip root too — Blender installs the zip's root as
  the package ``bl_ext.<repo>.voca_addon``, so ``__init__.py`` must sit next to the manifest, not in a
  ``voca_addon/`` folder. The package imports itself only relatively (``from .core ...``), so it works
  under that name;
* left out: ``__pycache__``/``*.pyc`` (tests and the development benchmark live outside the package:
  ``tools/bench_engine.py``; ``python -m voca_addon bench`` from an installed extension says so);
* the wheels of the manifest (scipy, PocketSphinx and threadpoolctl, see ``vendor_requirements.txt``) for
  that platform and those Pythons (a pure-Python ``py3-none-any`` wheel: in every zip), unmodified from
  PyPI (Blender's rule), stored under ``wheels/``. They are taken from
  ``./wheels/`` (git-ignored); missing ones are downloaded first with ``pip download``
  (``--fetch-wheels`` forces it).

Why one zip per platform *and Python line* (Blender's own ``--split-platforms`` splits by platform only):
three scipy wheels (cp311, cp313, cp314) and two PocketSphinx wheels (cp311, cp313; each carries its
29 MB English model) make 147 – 182 MB per platform with the add-on (the five wheels alone 140 – 174 MB),
over the 120 MB a zip may weigh (:data:`MAX_ZIP_MB`); grouped as :data:`ZIP_PYTHONS` each zip stays under it. Blender installs, from a zip's wheels, only those
whose tags match its own Python and platform (the others are skipped), and a repository may list several
files of one extension that differ in platform or Python (``blender_ext.py server-generate`` refuses only
overlaps). A Python without a wheel of a dependency (PocketSphinx has none for 3.14) still accepts the zip:
that feature says in one line that it is unavailable (``core.phonemes.sphinx``).

The zips are reproducible: sorted entries, fixed timestamps. The manifest's ``version`` must equal
``voca_addon.__version__``. Then Blender's validator runs on each:
``python <bpy>/<ver>/scripts/addons_core/bl_pkg/cli/blender_ext.py validate <zip>``, found next to the
installed ``bpy`` module (``.venv``); exit status 1 when one fails, or when a zip exceeds :data:`MAX_ZIP_MB`.

Contract: standard library only (``tomllib``, Python ≥ 3.11); does not import ``bpy`` or the add-on.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "voca_addon"
MANIFEST = ROOT / "blender_manifest.toml"
EXCLUDE_NAMES = {"__pycache__", "tests", ".DS_Store"}
EXCLUDE_SUFFIXES = (".pyc", ".pyo", ".blend1")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)          # fixed timestamp → byte-identical rebuilds
WHEELS = ROOT / "wheels"
VENDOR = ROOT / "vendor_requirements.txt"
MAX_ZIP_MB = 120                          # MB (10^6 bytes): the most one zip may weigh
# The Python lines, grouped into one zip each (per platform): Blender 4.2 – 5.0 run 3.11; official 5.1+
# builds run 3.13, Linux distributions' Blenders their system Python (Debian trixie's 4.3: 3.13, sid's 5.2:
# 3.14). Measured: the 3.11 zip is 60 – 77 MB, the 3.13 + 3.14 zip 88 – 108 MB per platform.
ZIP_PYTHONS = (("3.11",), ("3.13", "3.14"))
# Python → Blender platform → the pip platform tag asked for (the newest one pip may accept). macOS: the
# oldest macOS the wheels exist for (12 on arm64, 10.9 / 10.14 on x64), never 14.0-only builds, because
# Blender does not check a wheel's macOS version and Blender 4.2 – 5.x run on macOS 11.2+.
_MACOS_13 = {"linux-x64": "manylinux_2_17_x86_64", "macos-arm64": "macosx_12_0_arm64",
             "macos-x64": "macosx_10_14_x86_64", "windows-x64": "win_amd64"}
PLATFORM_TAGS = {
    "3.11": {"linux-x64": "manylinux_2_17_x86_64", "macos-arm64": "macosx_12_0_arm64",
             "macos-x64": "macosx_10_9_x86_64", "windows-x64": "win_amd64"},
    "3.13": _MACOS_13,
    "3.14": _MACOS_13,
}
WHEEL_PLATFORMS = {                       # a pattern in the wheel's platform tag → Blender platforms
    r"manylinux\w*_x86_64": ("linux-x64",), r"macosx_\d+_\d+_arm64": ("macos-arm64",),
    r"macosx_\d+_\d+_x86_64": ("macos-x64",), r"macosx_\d+_\d+_universal2": ("macos-arm64", "macos-x64"),
    r"win_amd64": ("windows-x64",),
}
HOST_PLATFORMS = {"linux-x86_64": "linux-x64", "win-amd64": "windows-x64"}   # sysconfig → Blender


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


def wheel_platforms(name: str) -> tuple:
    """The Blender platforms a wheel file serves (a macOS ``universal2`` wheel: both; a pure-Python
    ``any`` wheel: all)."""
    tag = Path(name).name[:-len(".whl")].split("-")[-1]
    if tag == "any":
        return tuple(sorted({p for platforms in WHEEL_PLATFORMS.values() for p in platforms}))
    for pattern, platforms in WHEEL_PLATFORMS.items():
        if re.search(pattern, tag):
            return platforms
    sys.exit(f"wheel {name}: unknown platform; add it to WHEEL_PLATFORMS in tools/build_extension.py")


def wheel_python(name: str) -> str | None:
    """The CPython version of a wheel file (``cp313`` → ``"3.13"``); None for a pure-Python ``py3-none-any``
    wheel, which serves every Python (it goes into every zip)."""
    python, abi, platform = Path(name).name[:-len(".whl")].split("-")[-3:]
    if (python, abi, platform) == ("py3", "none", "any"):
        return None
    found = re.fullmatch(r"cp3(\d+)", python)
    if not found:
        sys.exit(f"wheel {name}: neither a CPython 3 wheel nor py3-none-any (its interpreter tag picks its zip)")
    return f"3.{found.group(1)}"


def host() -> tuple:
    """(Blender platform, Python "X.Y") of this interpreter."""
    platform = sysconfig.get_platform()
    if platform.startswith("macosx"):
        platform = "macos-arm64" if platform.endswith("arm64") else "macos-x64"
    return HOST_PLATFORMS.get(platform, platform), f"{sys.version_info[0]}.{sys.version_info[1]}"


def vendor_requirements() -> list:
    """(requirement, Python version) per line and Python of vendor_requirements.txt; the marker
    ``; python_version == "3.13"`` or ``; python_version in "3.13 3.14"`` picks the Pythons (required)."""
    out = []
    for number, line in enumerate(VENDOR.read_text().splitlines(), 1):
        requirement, _, marker = line.split("#")[0].partition(";")
        if not requirement.strip():
            continue
        found = re.search(r'python_version\s*(?:==|in)\s*["\']([\d. ]+)["\']', marker)
        if not found:
            sys.exit(f"vendor_requirements.txt:{number}: say which Pythons it is for "
                     '(; python_version == "3.11" or in "3.13 3.14")')
        out += [(requirement.strip(), python) for python in found.group(1).split()]
    return out


def fetch_wheels(force: bool = False) -> None:
    """``pip download`` each requirement of vendor_requirements.txt for every platform into ./wheels/."""
    missing = [w for w in manifest_wheels() if not (ROOT / w).is_file()]
    if not (missing or force):
        return
    for requirement, python in vendor_requirements():
        for tag in sorted(set(PLATFORM_TAGS[python].values())):
            subprocess.run([sys.executable, "-m", "pip", "download", requirement, "--only-binary=:all:",
                            "--no-deps", "--python-version", python, "--implementation", "cp",
                            "--abi", "cp" + python.replace(".", ""), "--platform", tag,
                            "--dest", str(WHEELS), "-q"], check=True)
    missing = [w for w in manifest_wheels() if not (ROOT / w).is_file()]
    if missing:
        sys.exit(f"the manifest lists wheels pip did not download: {missing}; update blender_manifest.toml "
                 "to the files in ./wheels/")


def zip_wheels(platform: str | None, pythons: tuple | None) -> list:
    """The manifest's wheels that serve ``platform`` and one of ``pythons`` (None: any)."""
    return [w for w in manifest_wheels() if (platform is None or platform in wheel_platforms(w))
            and (pythons is None or wheel_python(w) in (None, *pythons))]


def narrowed_manifest(platform: str, pythons: tuple) -> bytes:
    """The manifest with ``platforms`` and ``wheels`` narrowed to one platform and Python line."""
    text = MANIFEST.read_text(encoding="utf-8")
    keep = zip_wheels(platform, pythons)
    text = re.sub(r"^platforms = \[.*?\]$", f'platforms = ["{platform}"]', text, flags=re.M)
    text = re.sub(r"^wheels = \[.*?^\]$", "wheels = [\n" + "".join(f'  "{w}",\n' for w in keep) + "]",
                  text, flags=re.M | re.S)
    return text.encode("utf-8")


def package_files(platform: str | None = None, pythons: tuple | None = None) -> list:
    """(path on disk, name in the zip) for every shipped file, sorted (wheels: those of the zip)."""
    files = []
    for path in sorted(PACKAGE.rglob("*")):
        rel = path.relative_to(PACKAGE)
        if path.is_dir() or set(rel.parts) & EXCLUDE_NAMES or path.name.endswith(EXCLUDE_SUFFIXES):
            continue
        files.append((path, rel.as_posix()))
    wheels = [(ROOT / w, w[2:] if w.startswith("./") else w) for w in zip_wheels(platform, pythons)]
    return [(MANIFEST, MANIFEST.name)] + files + wheels


def zip_name(version: str, platform: str | None, pythons: tuple | None) -> str:
    """``voca_addon-<version>[-<platform>-py311[_py313…]].zip``."""
    if platform is None:
        return f"voca_addon-{version}.zip"
    return f"voca_addon-{version}-{platform.replace('-', '_')}-" + \
        "_".join("py" + p.replace(".", "") for p in pythons) + ".zip"


def build(out_dir: Path, platform: str | None = None, pythons: tuple | None = None) -> Path:
    """Write the zip for ``platform`` and ``pythons`` (None: everything, one zip) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / zip_name(read_version(), platform, pythons)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in package_files(platform, pythons):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            stored = name.endswith(".whl")                       # wheels are zips already
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            data = narrowed_manifest(platform, pythons) if platform and path == MANIFEST else path.read_bytes()
            archive.writestr(info, data)
    return target


def planned_zips(platform: str | None = None, python: str | None = None) -> list:
    """(platform, Pythons) of every zip to write, restricted to ``platform`` / ``python`` when given;
    [(None, None)] (one zip) when the manifest lists no wheels."""
    wheels = manifest_wheels()
    if not wheels:
        return [(None, None)]
    platforms = sorted({p for w in wheels for p in wheel_platforms(w)})
    if platform is not None and platform not in platforms:
        sys.exit(f"no wheels for the platform {platform!r}; the manifest has {', '.join(platforms)}")
    groups = [g for g in ZIP_PYTHONS if python is None or python in g]
    if not groups:
        sys.exit(f"no zip carries Python {python}; the zips carry {', '.join(' + '.join(g) for g in ZIP_PYTHONS)}")
    return [(p, g) for p in platforms if platform in (None, p) for g in groups]


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
    parser.add_argument("--platform", help="only the zips for this Blender platform (e.g. linux-x64)")
    parser.add_argument("--python", help="only the zip that carries this Python (e.g. 3.11)")
    parser.add_argument("--host", action="store_true", help="only the zip for this interpreter's platform "
                        "and Python (the tests' choice)")
    parser.add_argument("--fetch-wheels", action="store_true", help="download the wheels again")
    args = parser.parse_args(argv)
    if args.host:
        args.platform, args.python = host()
    fetch_wheels(force=args.fetch_wheels)
    archives = [build(args.out, platform, pythons)
                for platform, pythons in planned_zips(args.platform, args.python)]
    too_big = []
    for archive in archives:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
        size = archive.stat().st_size / 1e6
        wheels = sorted(Path(n).name.split("-")[0] + "-" + Path(n).name.split("-")[2] for n in names
                        if n.endswith(".whl"))
        print(f"wrote {archive} ({size:.1f} MB, {len(names)} files; wheels: {', '.join(wheels) or 'none'})")
        if size > MAX_ZIP_MB:
            too_big.append(f"{archive.name} weighs {size:.1f} MB, over {MAX_ZIP_MB} MB")
    status = 0
    if not args.no_validate:
        validator = args.validator or find_validator()
        if validator is None or not validator.is_file():
            print("Blender's validator (blender_ext.py) was not found: install bpy (make venv) or pass "
                  "--validator PATH, or use --no-validate", file=sys.stderr)
            return 1
        status = max(validate(archive, validator) for archive in archives)
        print("validation " + ("passed" if status == 0 else f"FAILED (exit {status})"))
    for line in too_big:
        print(f"too big: {line}; split the Pythons further (ZIP_PYTHONS)", file=sys.stderr)
    return status or (1 if too_big else 0)


if __name__ == "__main__":
    sys.exit(main())
