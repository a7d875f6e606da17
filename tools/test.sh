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

# expect_fail NAME LIMIT CMD...: the command must fail cleanly with exit 1
# (a test failure), not crash, hang or pass.
expect_fail() {
  local name=$1 limit=$2; shift 2
  local log="$logdir/skeleton.log" rc
  timeout -k 10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  if [ $rc -eq 1 ] && grep -q -- '\.\.\. Failed' "$log"; then
    passed=$((passed + 1))
    printf '  ok    %-50s %s\n' "$name" "fails cleanly: $(grep -m1 -- '... Failed' "$log" | cut -c1-60)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    printf '  FAIL  %-50s (exit %s, expected a clean test failure, exit 1)\n' "$name" "$rc"
    sed 's/^/        | /' "$log" | tail -n 40
  fi
}

SOL="$BUILD/solution/raft_test"
SKEL="$BUILD/labs/raft_test"
# Outer limits: the harness fails a test at 120 s itself; these catch a hang.
if [ "$MODE" != quick ]; then
  echo "== Raft: the reference solution, every test"
  for t in $("$SOL" --list); do
    check "solution $t" 150 "$SOL" "$t"
  done
  echo "== Raft: the reference solution, 3A and 3B under valgrind memcheck"
  for t in $("$SOL" --list 3A) $("$SOL" --list 3B); do
    check "solution $t, memcheck" 700 "${VG[@]}" "$SOL" "$t"
  done
fi
echo "== Raft: the skeleton fails every test cleanly"
for t in $("$SKEL" --list); do
  expect_fail "skeleton $t" 150 "$SKEL" "$t"
done

echo
if [ $failed -gt 0 ]; then
  echo "Failed:"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
