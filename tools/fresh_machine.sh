#!/usr/bin/env bash
# `make test` as on a machine where nothing was installed before: a clean clone of COMMIT in a new Debian
# bookworm chroot holding only python3, python3-venv, make, git, debootstrap and util-linux, run with a plain
# environment (env -i: no PYTHONUNBUFFERED, no pip cache, no pip settings but this machine's network ones).
# What the chroot takes from this machine is only its network: DNS (resolv.conf) and its trust store (a site
# proxy's CA in /usr/local/share/ca-certificates, /etc/pip.conf pointing pip at the system bundle). ../shared
# is bind-mounted read-only beside the clone, as CI has it. Needs root and Debian's package registry; ~15 GB.
#
#   tools/fresh_machine.sh [COMMIT] [ROOT]      (default HEAD, /var/tmp/voca-fresh-bookworm; ROOT is made anew)
#
# The log goes to standard output; the exit status is .ci/run's.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SHARED=$(cd "$REPO/.." && pwd -P)/shared
COMMIT=$(git -C "$REPO" rev-parse "${1:-HEAD}")
R=${2:-/var/tmp/voca-fresh-bookworm}
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || { echo "no Debian mirror found in this machine's apt sources" >&2; exit 3; }
[ "$(id -u)" = 0 ] || { echo "a fresh chroot needs root (debootstrap, mounts)" >&2; exit 3; }
case "$R" in /|/bin|/usr|/etc|/var|/tmp|/root|/home|"") echo "refusing to use '$R' as the chroot" >&2; exit 2 ;; esac
rm -rf --one-file-system "$R"
debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv,make,git,debootstrap,util-linux \
  bookworm "$R" "$MIRROR" >/dev/null
cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/" 2>/dev/null || true
[ ! -f /etc/pip.conf ] || cp /etc/pip.conf "$R/etc/pip.conf"
chroot "$R" update-ca-certificates >/dev/null
ln -sf ../proc/self/mounts "$R/etc/mtab"   # as on any installed Debian (systemd-tmpfiles) or container; a bare
#                                            debootstrap lacks it, and Blender 4.5 then prints a line on stderr
cp -L /etc/resolv.conf "$R/etc/resolv.conf"
mkdir -p "$R/work/ci/shared"
git clone -q "$REPO" "$R/work/ci/main"
git -C "$R/work/ci/main" checkout -q "$COMMIT"
exec unshare --mount --propagation private bash -euc '
R=$1 SHARED=$2
mount --bind "$R" "$R"                     # its / a mount point, as in a container or a VM
mount --bind /proc "$R/proc"; mount --bind /sys "$R/sys"; mount --bind /dev "$R/dev"
mount --bind /dev/pts "$R/dev/pts" 2>/dev/null || true
mount --bind "$SHARED" "$R/work/ci/shared"; mount -o remount,bind,ro "$R/work/ci/shared"
exec chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  LANG=C.UTF-8 CI=true TERM=dumb bash -c "cd /work/ci/main && git log --oneline -1 && date && time bash .ci/run"
' bash "$R" "$SHARED"
