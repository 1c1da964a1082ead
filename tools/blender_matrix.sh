#!/usr/bin/env bash
# The stages of `make test` side by side: $MAIN_STAGE (a command: the core, references, training and the
# Blender layer on bpy 5.0 in .venv) when set, then tests/blender whole on each version in $BPY_FULL and its
# smoke subset (pytest -m smoke) on each in $BPY_SMOKE, in the environments .venv-bpyV/ (those in $BPY_313
# run inside tools/py313.sh's CPython 3.13 chroot). $MATRIX_JOBS stages at a time (default 2: CI's two
# cores; the longest first), each to its own log, printed whole when the stage fails; one line per stage
# with its result and wall time (the main stage also prints its slowest tests). The reference models the
# stages share are built before (tools/test_fixtures.py), so no two stages build one at once.
# A stage without its environment (no Python 3.13 chroot here) is skipped with the reason; with CI set
# that is a failure. $MATRIX_ARGS adds pytest arguments (e.g. -k NAME to try the matrix quickly).
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${MATRIX_JOBS:-2}
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/voca-matrix.XXXXXX")
failed=""

label() {   # version, what: how a stage is named in the log
  if [ "$2" = main ]; then echo "main stage (core, references, training; Blender layer on bpy 5.0)"; else echo "bpy $1 ($2)"; fi
}

stage() {   # version, what ("whole" | "smoke" | "main"): runs the stage into its log; prints one line when done
  local v=$1 what=$2 run="" sel="" t0 rc summary
  case " ${BPY_313:-} " in *" $v "*) run=tools/py313.sh ;; esac
  [ "$what" = smoke ] && sel="-m smoke"
  t0=$(date +%s)
  if [ "$what" = main ]; then
    bash -c "$MAIN_STAGE" > "$LOGS/$v.log" 2>&1
  else
    # shellcheck disable=SC2086
    $run ".venv-bpy$v/bin/python" -m pytest -q -p no:cacheprovider $sel ${MATRIX_ARGS:-} tests/blender \
      > "$LOGS/$v.log" 2>&1
  fi
  rc=$?
  echo $rc > "$LOGS/$v.rc"
  summary=$(grep -E ' in [0-9.]+s' "$LOGS/$v.log" | tail -1 | tr -d '=')
  echo "== $(label "$v" "$what"): $([ $rc = 0 ] || echo "FAILED (exit $rc): ")${summary:-no summary} — stage $(( $(date +%s) - t0 )) s"
  if [ "$what" = main ] && [ $rc = 0 ]; then sed -n '/slowest .* durations/,/^[=]* [0-9]* passed/p' "$LOGS/$v.log"; fi
}

declare -A kind
order=()
if [ -n "${MAIN_STAGE:-}" ]; then kind[main]=main; order+=(main); fi
for v in ${BPY_FULL:-}; do kind[$v]=whole; order+=("$v"); done
for v in ${BPY_SMOKE:-}; do kind[$v]=smoke; order+=("$v"); done
running=()
for v in "${order[@]}"; do
  if [ "$v" != main ] && [ ! -f ".venv-bpy$v/.installed" ]; then
    why="make did not create it"
    case " ${BPY_313:-} " in *" $v "*) why=$(tools/py313.sh --check 2>&1) && why="make did not create it" ;; esac
    echo "== bpy $v (${kind[$v]}): SKIPPED: no environment .venv-bpy$v: $why"
    [ -z "${CI:-}" ] || failed="$failed $v(required-under-CI)"
    continue
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  echo "== $(label "$v" "${kind[$v]}"): started $(date +%H:%M:%S)"
  stage "$v" "${kind[$v]}" &
  running+=("$v")
done
wait
for v in "${running[@]}"; do
  [ "$(cat "$LOGS/$v.rc")" = 0 ] && continue
  echo "---------------- $(label "$v" "${kind[$v]}"): the stage's output"; cat "$LOGS/$v.log"; failed="$failed $v"
done
rm -rf "$LOGS"
[ -z "$failed" ] || { echo "Blender-layer matrix failed on:$failed"; exit 1; }
