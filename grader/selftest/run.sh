#!/usr/bin/env bash
# The grader's self-test: grades each deliberately broken Raft in this folder
# (each wraps the reference solution, breaking one thing) with two tests, the
# broken one first, and checks from the JSON report that each got the
# expected verdict, so that the second test still ran after the first.
#   grader/selftest/run.sh [NAME...]     (from the kit's root; default: all)
# Prints one line per case and exits 0 only if every case got its verdicts.
set -u
cd "$(dirname "$0")/../.." || exit 2
GRADE=${GRADE:-build/grade}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/raftlab-selftest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# name | grade options | first test=verdict | second test=verdict | text in the first message
CASES=(
  "segv_make|--run InitialElection3A,ReElection3A|crashed|crashed|SIGSEGV"
  "loop_start|--timeout 8 --run BasicAgree3B,InitialElection3A|timed out|passed|no result after 8 s"
  "deadlock_handler|--timeout 12 --run InitialElection3A,ReElection3A|timed out|timed out|no result"
  "heap_overflow|--valgrind memcheck --run InitialElection3A,ReElection3A|memory errors|memory errors|Invalid write"
  "use_after_free|--san address --run InitialElection3A,ReElection3A|memory errors|memory errors|heap-use-after-free"
  "leak_kill|--valgrind memcheck --run InitialElection3A,ReElection3A|leaked|leaked|definitely lost"
  "thread_after_kill|--run InitialElection3A,ReElection3A|failed|failed|still running after raft_kill"
  "output_flood|--fsize-limit 32 --run InitialElection3A,ReElection3A|resource limit|resource limit|SIGXFSZ"
  "exit_midtest|--run InitialElection3A,ReElection3A|failed|failed|exited with status 0"
  "threads_unbounded|--run InitialElection3A,ReElection3A|resource limit|resource limit|threads running"
  "race_term|--san thread --run InitialElection3A,ReElection3A|data race|data race|data race"
)

# verdict_of JSON TEST: the verdict field of TEST's line (one test a line).
verdict_of() {
  grep -F "\"name\": \"$2\"" "$1" | sed -n 's/.*"verdict": "\([^"]*\)".*/\1/p'
}

pass=0
fail=0
for c in "${CASES[@]}"; do
  IFS='|' read -r name opts v1 v2 text <<<"$c"
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
    continue
  fi
  json="$tmp/$name.json"
  log="$tmp/$name.log"
  start=$(date +%s)
  # shellcheck disable=SC2086 # opts are words
  NO_COLOR=1 "$GRADE" --impl "grader/selftest/$name" $opts --logs "$tmp/logs-$name" \
    --json "$json" >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  tests=$(printf '%s\n' "$opts" | sed -n 's/.*--run \([^ ]*\).*/\1/p')
  t1=Test${tests%%,*}
  t2=Test${tests##*,}
  got1=$(verdict_of "$json" "$t1" 2>/dev/null)
  got2=$(verdict_of "$json" "$t2" 2>/dev/null)
  why=""
  [ "$rc" -eq 1 ] || why="grade exited $rc (expected 1)"
  [ "$got1" = "$v1" ] || why="$why; $t1: '$got1', expected '$v1'"
  [ "$got2" = "$v2" ] || why="$why; $t2: '$got2', expected '$v2'"
  grep -F "\"name\": \"$t1\"" "$json" 2>/dev/null | grep -qF -- "$text" ||
    why="$why; $t1's report lacks '$text'"
  grep -qF "rerun:  make grade IMPL=grader/selftest/$name RUN=$t1" "$log" ||
    why="$why; no rerun command for $t1"
  if [ -z "$why" ]; then
    pass=$((pass + 1))
    printf '  ok    %-18s %-15s then %-15s %4ss\n' "$name" "$v1" "$v2" "$secs"
  else
    fail=$((fail + 1))
    printf '  FAIL  %-18s %s\n' "$name" "${why#; }"
    sed 's/^/        | /' "$log" | tail -n 40
  fi
done
echo "selftest: $pass passed, $fail failed"
[ $fail -eq 0 ]
