#!/usr/bin/env bash
# make test: the kit's own suite. Every check runs in its own process with a
# time limit; a failing check prints its output. Closes with the line
# "N passed, N failed" and exits non-zero if anything failed. The Raft steps
# run through the grader (build/grade) and check its JSON report; the sim
# steps run the solution in virtual time with fixed seeds (sim/).
#   tools/test.sh [quick]    quick: skip valgrind, the solution's suite and
#                            the grader's self-test
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

echo "== lincheck: the linearizability checker of stage 4"
check "lincheck: checker tests (brute-force cross-check, files, fuzz)" 120 "$BUILD/lincheck_test"
if [ "$MODE" != quick ]; then
  check "lincheck tests, memcheck" 600 "${VG[@]}" "$BUILD/lincheck_test"
fi
# The command-line tool: its exit status says the verdict (0, 1, 2; 3 for a
# bad file).
check "lincheck: the command's verdicts" 60 bash -c '
  d=$1 L=$2/lincheck
  printf "lincheck-history 1\n0 put \"k\" \"a\" 0 10\n1 get \"k\" \"a\" 20 30\n" >"$d/ok.history"
  printf "lincheck-history 1\n0 put \"k\" \"a\" 0 10\n1 get \"k\" \"b\" 20 30\n" >"$d/bad.history"
  printf "lincheck-history 1\n0 put k \"a\" 0 10\n" >"$d/malformed.history"
  "$L" "$d/ok.history" >/dev/null; a=$?
  "$L" "$d/bad.history" | grep -q "NOT linearizable"; b=$?; "$L" "$d/bad.history" >/dev/null; c=$?
  "$L" "$d/malformed.history" 2>&1 | grep -q "malformed.history:2"; e=$?
  "$L" "$d/malformed.history" >/dev/null 2>&1; f=$?
  [ "$a$b$c$e$f" = 00103 ] || { echo "exit statuses $a $b $c $e $f"; exit 1; }' _ "$logdir" "$BUILD"

# grade_all NAME EXPECT LIMIT GRADE-OPTIONS...: grades with build/grade and
# its JSON report; every test's verdict must be EXPECT, one line per test. A
# "failed" must be the harness's own failure (a clean failure: no crash,
# hang or early exit).
grade_all() {
  local name=$1 expect=$2 limit=$3; shift 3
  local json="$logdir/grade.json" log="$logdir/grade.log" rc line t v secs msg
  rm -f "$json"
  NO_COLOR=1 timeout -k 10 "$limit" "$BUILD/grade" "$@" --json "$json" \
    --logs "$logdir/grade-logs" >"$log" 2>&1
  rc=$?
  # build/grade's default is secure mode: the report must say the sandbox held.
  if [ -s "$json" ] && ! grep -q '"sandbox": "bubblewrap' "$json"; then
    failed=$((failed + 1))
    failures+=("$name: sandbox")
    printf '  FAIL  %-50s (the report does not say the tests ran in the sandbox)\n' "$name"
  fi
  if [ ! -s "$json" ] || { [ "$expect" = passed ] && [ $rc -ne 0 ]; } ||
     { [ "$expect" != passed ] && [ $rc -ne 1 ]; }; then
    failed=$((failed + 1))
    failures+=("$name")
    printf '  FAIL  %-50s (build/grade exited %s)\n' "$name" "$rc"
    sed 's/^/        | /' "$log" | tail -n 60
    [ -s "$json" ] || return
  fi
  while IFS= read -r line; do
    t=$(printf '%s' "$line" | sed -n 's/.*"name": "\([^"]*\)".*/\1/p')
    v=$(printf '%s' "$line" | sed -n 's/.*"verdict": "\([^"]*\)".*/\1/p')
    secs=$(printf '%s' "$line" | sed -n 's/.*"seconds": \([0-9.]*\).*/\1/p')
    msg=$(printf '%s' "$line" | sed -n 's/.*"message": "\([^"]*\)".*/\1/p')
    if [ "$v" = "$expect" ] && { [ "$v" != failed ] || [ "${msg#the process exited}" = "$msg" ]; }; then
      passed=$((passed + 1))
      printf '  ok    %-50s %6.1fs  %s\n' "$name $t" "$secs" "$(printf '%s' "$msg" | cut -c1-50)"
    else
      failed=$((failed + 1))
      failures+=("$name $t")
      printf '  FAIL  %-50s %6.1fs  %s: %s (expected %s)\n' "$name $t" "$secs" "$v" "$msg" "$expect"
    fi
  done < <(grep '"name": ' "$json")
}

SOL="$BUILD/solution/raft_test"
SKEL="$BUILD/labs/raft_test"
if [ "$MODE" != quick ]; then
  echo "== Raft: the reference solution, every test of 3A-3D (build/grade)"
  grade_all "solution" passed 4200 --impl solution --binary "$SOL" --run '*3A,*3B,*3C,*3D'
  # Stage 4's tests run for fixed times and time nothing tighter than 1 s:
  # two at a time.
  echo "== Stage 4: the reference solution, every test, two at a time"
  grade_all "solution" passed 2400 --impl solution --binary "$SOL" --run '*4A,*4B,*4C' --jobs 2
  echo "== Raft: the reference solution, 3A and 3B under valgrind memcheck"
  grade_all "solution memcheck" passed 20000 --impl solution --binary "$SOL" \
    --valgrind memcheck --run '*3A,*3B,Basic4A,Snapshot4A,Basic4B,SnapshotSize4C'
  # A correct Raft must pass under each sanitizer too (the broken ones of
  # grader/selftest show that each catches what it should).
  for san in thread address undefined; do
    echo "== Raft: the reference solution, SAN=$san"
    grade_all "solution SAN=$san" passed 1800 --impl solution --san "$san" \
      --run 'InitialElection3A,Backup3B,SnapshotInstallUnreliable3D'
  done
fi
echo "== Raft: the skeleton fails every test cleanly"
grade_all "skeleton" failed 4200 --impl labs --binary "$SKEL" --jobs 2

# Sim mode (sim/): the scheduler's own checks, the same seed twice giving
# the same output, and fixed-seed sweeps of the solution per stage.
SIM_SOL="$BUILD/sim/solution/raft_test"
SIM_SELFTEST="$BUILD/sim/sim_selftest"
# sim_report NAME MODE PATTERN: the self-test mode must exit 1 reporting PATTERN.
sim_report() {
  local out rc
  out=$(RAFTLAB_SIM_BUSY_S=1 timeout -k 10 120 "$SIM_SELFTEST" "$2" 2>&1)
  rc=$?
  if [ $rc -eq 1 ] && printf '%s' "$out" | grep -q -- "$3"; then
    passed=$((passed + 1))
    printf '  ok    %-50s\n' "$1"
  else
    failed=$((failed + 1))
    failures+=("$1")
    printf '  FAIL  %-50s (exit %s, expected exit 1 and "%s")\n' "$1" "$rc" "$3"
    printf '%s\n' "$out" | sed 's/^/        | /' | tail -n 20
  fi
}
# same_twice TEST SEED: two runs with one seed print byte-identical output.
same_twice() {
  local name="sim same output twice, $1 seed $2"
  RAFTLAB_SEED=$2 timeout -k 10 120 "$SIM_SOL" "$1" >"$logdir/sim-a.log" 2>&1
  RAFTLAB_SEED=$2 timeout -k 10 120 "$SIM_SOL" "$1" >"$logdir/sim-b.log" 2>&1
  if grep -q -- '\.\.\. Passed' "$logdir/sim-a.log" &&
     cmp -s "$logdir/sim-a.log" "$logdir/sim-b.log"; then
    passed=$((passed + 1))
    printf '  ok    %-50s\n' "$name"
  else
    failed=$((failed + 1))
    failures+=("$name")
    printf '  FAIL  %-50s (did not pass, or the two outputs differ)\n' "$name"
    diff "$logdir/sim-a.log" "$logdir/sim-b.log" | sed 's/^/        | /' | head -n 20
  fi
}
echo "== sim: scheduler, determinism, seed sweeps (virtual time)"
check "sim selftest timing" 120 "$SIM_SELFTEST" timing
check "sim selftest join (a pthread_t is not reused before its join)" 120 "$SIM_SELFTEST" join
sim_report "sim selftest deadlock" deadlock "sim: deadlock"
sim_report "sim selftest busy loop" busy "sim: busy loop"
for t in InitialElection3A BasicAgree3B Figure83C SnapshotBasic3D; do
  for seed in 1 2; do
    same_twice "Test$t" "$seed"
  done
done
for ts in InitialElection3A:200 ManyElections3A:50 Backup3B:50 Figure83C:30 \
          Figure8Unreliable3C:50 SnapshotInstallCrash3D:30 SnapshotInstallUnreliable3D:30 \
          NoTermChurn3A:50 OneVotePerTerm3A:50 StaleHeartbeats3A:50 StepDown3A:50 StaleReplays3B:30 \
          StaleAppend3B:50 StaleReplies3B:50 LateVote3B:50 \
          Figure8Built3B:50 VoteAfterCrash3C:50 CrashPoints3C:20 StaleSnapshots3D:30 \
          CrashPoints3D:20 LateSnapshot3D:50 SnapshotTerm3D:50 Basic4A:50 LeaderPartition4A:50 RestartSubmit4A:20 Snapshot4A:20 \
          UnreliableOneKey4B:20 OnePartition4B:20 PersistPartitionUnreliableLinearizable4B:5 \
          SnapshotRPC4C:20 SnapshotUnreliableRecoverConcurrentPartitionLinearizable4C:5; do
  t=${ts%%:*} n=${ts##*:}
  check "sim sweep $t, seeds 1-$n" 600 sim/explore.sh "$SIM_SOL" "Test$t" "$n" 2 1
done
# figure16 (make figure16), small: two ranges, the plot, the same seed twice.
check "figure16: 2 ranges x 50 trials, plot, same seed twice" 300 bash -c '
  out=$1/figure16 B=$2
  sim/figure16/run.sh "$B/sim/figure16_trials" "$B/figure16_plot" "$out" 50 2 1 150-155,12-24 &&
  grep "<polyline" "$out/figure16.svg" | wc -l | grep -qx 2 &&
  RAFTLAB_SEED=2 "$B/sim/figure16_trials" --range 12-24 --trials 50 --out "$out/again.trials" &&
  cmp "$out/12-24.trials" "$out/again.trials"' _ "$logdir" "$BUILD"

# The tests the grader runs are its points file's (never the binary's own
# list): the two must name the same tests, in the same order.
check "grader: points.txt names every test of raft_test --list" 60 bash -c '
  diff <("$1" --list) <(sed -n "s/^\(Test[A-Za-z0-9]*\).*/\1/p" grader/points.txt)' _ "$SKEL"
# The calls a submission may make: each one the handout lists, and each of
# the kit's a function of its public headers.
check "grader: handouts/rules.md lists every allowed call" 60 bash -c '
  bad=0
  for n in $(sed "s/#.*//" grader/allowed-calls.txt); do
    grep -qw -- "$n" handouts/rules.md || { echo "not in handouts/rules.md: $n"; bad=1; }
    case $n in labrpc_*|codec_*|persister_*)
      grep -qw -- "$n" labrpc/labrpc.h labrpc/codec.h labrpc/persister.h ||
        { echo "not in a public header: $n"; bad=1; };;
    esac
  done
  exit $bad'

# A submission that does not compile: exit 2, and a JSON report that says why.
check "grader: a build failure gets a report" 120 bash -c '
  mkdir -p "$1/nobuild/raft" && cp labs/raft/raft.c "$1/nobuild/raft/" &&
  echo "int broken = ;" >>"$1/nobuild/raft/raft.c" || exit 1
  "$2/grade" --impl "$1/nobuild" --json "$1/nobuild.json" >/dev/null 2>&1
  rc=$?
  [ $rc = 2 ] || { echo "exit $rc, expected 2"; exit 1; }
  grep -q "\"name\": \"build\", .*\"verdict\": \"grader error\", \"message\": \"the build failed: .*error" "$1/nobuild.json" ||
    { echo "no build entry in the JSON report:"; cat "$1/nobuild.json"; exit 1; }' _ "$logdir" "$BUILD"

echo "== pictures: the HTML timeline of failing runs, in headless Chromium (grader/trace)"
pics="$logdir/pictures"
check "pictures: failing runs print their picture" 900 env BUILD="$BUILD" grader/trace/tests/check.sh make "$pics"
check "pictures: one seed, one trace (sim, native and memcheck)" 30 \
  grader/trace/tests/check.sh same "$pics/sim.html" "$pics/sim-memcheck.html"
check "pictures: sim mode (lanes, RPCs, the failure, its time)" 180 grader/trace/tests/check.sh page "$pics/sim.html" 3
check "pictures: real time" 180 grader/trace/tests/check.sh page "$pics/real.html" 3
check "pictures: stage 4 (client lanes)" 180 grader/trace/tests/check.sh page "$pics/kv.html" 3 1
check "pictures: not linearizable (the order found, the ops that cannot come next)" 180 \
  grader/trace/tests/check.sh page "$pics/lin.html" 7 15 lin

echo "== handouts: every command they show, the logging snippet, the log command"
check "handout: every command of the handouts and README is accepted" 120 tools/handout_commands.sh
check "handout: keep a run's log (debugging.md)" 120 tools/handout_snippets.sh log
if [ "$MODE" != quick ]; then
  for tool in helgrind drd thread; do
    check "handout: the logging snippet under $tool" 600 tools/handout_snippets.sh "$tool"
  done
fi

if [ "$MODE" != quick ]; then
  echo "== grader: each broken or hostile submission gets its verdict (grader/selftest)"
  for case in $(grader/selftest/run.sh --list); do
    check "grader selftest $case" 600 grader/selftest/run.sh "$case"
  done
fi

echo
if [ $failed -gt 0 ]; then
  echo "Failed:"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
