#!/usr/bin/env bash
# make test: the kit's own suite. Every check runs in its own process with a
# time limit; a failing check prints its output. Closes with the line
# "N passed, N failed" and exits non-zero if anything failed.
#   tools/test.sh [quick]    quick: skip the valgrind and full-suite steps
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
MODE=${1:-full}
passed=0
failed=0
failures=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/raftlab-test.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

# check NAME LIMIT_SECONDS CMD...: one pass/fail line; output shown on failure.
check() {
  local name=$1 limit=$2; shift 2
  local log="$logdir/$(echo "$name" | tr '/ ' '__').log" start rc
  start=$(date +%s.%N)
  timeout -k 10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  local secs
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    printf '  ok    %-50s %6ss\n' "$name" "$secs"
  else
    failed=$((failed + 1))
    failures+=("$name")
    local why="exit $rc"
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && why="timed out after ${limit}s"
    [ $rc -gt 128 ] && [ $rc -ne 137 ] && why="killed by signal $((rc - 128))"
    printf '  FAIL  %-50s %6ss  (%s)\n' "$name" "$secs" "$why"
    sed 's/^/        | /' "$log" | tail -n 60
  fi
}

VG=(valgrind -q --fair-sched=yes --leak-check=full --errors-for-leak-kinds=definite
    --error-exitcode=99)

echo "== labrpc: codec, persister, network (one process per test)"
tests=$("$BUILD/labrpc_test" --list) || { echo "cannot list labrpc tests"; exit 2; }
for t in $tests; do
  check "$t" 60 "$BUILD/labrpc_test" "$t"
done

if [ "$MODE" != quick ]; then
  echo "== labrpc under valgrind memcheck (errors and definite leaks fail)"
  check "labrpc suite, memcheck" 600 "${VG[@]}" "$BUILD/labrpc_test"
fi

echo
if [ $failed -gt 0 ]; then
  echo "Failed:"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
