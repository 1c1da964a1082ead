#!/usr/bin/env bash
# The shared libraries the PyPI bpy module loads (X11, EGL/GL, xkbcommon, SM/ICE, Wayland, D-Bus, OpenMP) on
# this machine, for the CPython 3.11 environments (.venv/, .venv-bpy4.x/); tools/py313.sh installs the same
# list in its chroot. A fresh Debian has none of them: `import bpy` fails with "libX11.so.6: cannot open shared
# object file".
#
#   tools/bpy_libs.sh --packages    print the Debian packages (one line)
#   tools/bpy_libs.sh PYTHON        exit 0 when PYTHON imports bpy; else install the packages with apt-get
#                                   (needs root and Debian's registry) and check again; else say in one line
#                                   which library is missing and the command that installs them (exit 3)
set -euo pipefail
PACKAGES="libegl1 libgl1 libx11-6 libxrender1 libxxf86vm1 libxfixes3 libxi6 libxkbcommon0 libsm6 libice6 \
libxext6 libxcursor1 libxinerama1 libxrandr2 libwayland-client0 libwayland-cursor0 libwayland-egl1 libdbus-1-3 \
libgomp1"

missing() {   # the loader's complaint when PYTHON cannot import bpy (nothing when it can)
  local out
  out=$("$1" -c "import bpy" 2>&1 >/dev/null) && return 0
  echo "$out" | grep -o '[^ :]*\.so[^:]*: cannot open shared object file' | head -1 \
    || echo "$out" | tail -1
}

case "${1:-}" in
  --packages) echo "$PACKAGES"; exit 0 ;;
  ""|-*) echo "usage: tools/bpy_libs.sh --packages | PYTHON" >&2; exit 2 ;;
esac
PY=$1
why=$(missing "$PY")
[ -n "$why" ] || exit 0
case "$why" in *.so*) ;; *) echo "bpy cannot load in $PY: $why" >&2; exit 3 ;; esac   # not a missing library
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "bpy cannot load ($why): installing the libraries it needs with apt-get"
  # shellcheck disable=SC2086
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      $PACKAGES; } >/dev/null || { echo "apt-get could not install bpy's libraries ($PACKAGES)" >&2; exit 3; }
  why=$(missing "$PY")
  [ -n "$why" ] || exit 0
fi
echo "bpy cannot load in $PY: $why. Install its libraries (Debian/Ubuntu): sudo apt-get install $PACKAGES" >&2
exit 3
