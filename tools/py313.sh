#!/usr/bin/env bash
# Python 3.13 for the bpy 5.1+ environments (bpy 5.1+ is built for CPython 3.13 only; this project's
# machines run Debian bookworm's 3.11): a Debian trixie chroot with python3.13, python3.13-venv and the
# shared libraries the bpy module loads (EGL/GL, X11, xkbcommon, SM/ICE), made once per machine with
# debootstrap (needs root and the Debian package registry; ~1-2 min, ~400 MB).
#
#   tools/py313.sh --check          exit 0 when the chroot can be used or made, else print why (exit 3)
#   tools/py313.sh --setup          make the chroot (idempotent) and print its path
#   tools/py313.sh CMD ARGS...      run CMD inside it, in the current directory, with this repository,
#                                   ../shared and /tmp bind-mounted at the same paths (a private mount
#                                   namespace: nothing stays mounted after the command)
#
# VOCA_PY313_ROOT picks the chroot (default /var/tmp/voca-py313-root).
set -euo pipefail
ROOT=${VOCA_PY313_ROOT:-/var/tmp/voca-py313-root}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SHARED=$(cd "$REPO/.." && pwd -P)/shared
PACKAGES="python3.13 python3.13-venv $("$REPO/tools/bpy_libs.sh" --packages) ca-certificates"

ready() { [ -x "$ROOT/usr/bin/python3.13" ] && [ -f "$ROOT/.voca-py313-ready" ] \
  && [ "$(cat "$ROOT/.voca-py313-ready")" = "$PACKAGES" ]; }

why_not() {   # prints the reason this machine cannot make or use the chroot (nothing when it can)
  if ready; then
    [ "$(id -u)" = 0 ] || echo "running inside the Python 3.13 chroot $ROOT needs root (chroot, mounts)"
    return 0
  fi
  [ "$(id -u)" = 0 ] || { echo "making the Python 3.13 chroot needs root (debootstrap, chroot)"; return 0; }
  command -v debootstrap >/dev/null || command -v apt-get >/dev/null \
    || { echo "no debootstrap and no apt-get to install it (not a Debian machine)"; return 0; }
  mirror >/dev/null || echo "no Debian mirror found in this machine's apt sources"
}

mirror() {    # the Debian mirror this machine's apt already uses
  local m
  m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] && echo "$m"
}

setup() {
  if ready; then echo "$ROOT"; return 0; fi
  local reason; reason=$(why_not)
  [ -z "$reason" ] || { echo "$reason" >&2; exit 3; }
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; } >/dev/null
  [ -x "$ROOT/bin/bash" ] || debootstrap --variant=minbase trixie "$ROOT" "$(mirror)" >/dev/null \
    || { echo "debootstrap of Debian trixie into $ROOT failed (is the Debian registry reachable?)" >&2; exit 3; }
  in_root bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends $PACKAGES >/dev/null" \
    || { echo "installing python3.13 and bpy's libraries in $ROOT failed" >&2; exit 3; }
  ln -sf /proc/self/mounts "$ROOT/etc/mtab"      # Blender lists the mounted file systems
  echo "$PACKAGES" > "$ROOT/.voca-py313-ready"
  echo "$ROOT"
}

in_root() {   # run "$@" in the chroot, in the current directory, with the bind mounts (private namespace)
  local dir; dir=$(pwd -P)
  unshare --mount --propagation private bash -euc '
    root=$1 repo=$2 shared=$3 dir=$4; shift 4
    for d in proc dev sys; do mkdir -p "$root/$d"; done
    mount --bind /proc "$root/proc"; mount --rbind /dev "$root/dev"; mount --rbind /sys "$root/sys"
    mount --bind /tmp "$root/tmp"
    mkdir -p "$root$repo"; mount --bind "$repo" "$root$repo"
    if [ -d "$shared" ]; then mkdir -p "$root$shared"; mount --bind "$shared" "$root$shared"; fi
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    # The host'"'"'s trust store (a site proxy'"'"'s CA, if any), so pip reaches the registry as it does here.
    ca=/etc/ssl/certs/ca-certificates.crt
    if [ -f "$ca" ] && [ -f "$root$ca" ]; then mount --bind "$ca" "$root$ca"; fi
    # The host'"'"'s pip settings name local wheel folders the chroot does not have.
    [ -d "$root${PIP_FIND_LINKS:-/nonexistent}" ] || unset PIP_FIND_LINKS
    exec chroot "$root" bash -c "cd \"\$0\" 2>/dev/null || cd /; exec \"\$@\"" "$dir" "$@"
  ' bash "$ROOT" "$REPO" "$SHARED" "$dir" "$@"
}

case "${1:-}" in
  --check) r=$(why_not); [ -z "$r" ] || { echo "$r"; exit 3; } ;;
  --setup) setup ;;
  "") echo "usage: tools/py313.sh --check | --setup | CMD ARGS..." >&2; exit 2 ;;
  *) ready || setup >/dev/null; in_root "$@" ;;
esac
