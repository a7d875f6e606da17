#!/usr/bin/env bash
# The grader's self-test. Each folder here is a submission that breaks one
# thing (most wrap the reference solution: selftest.h) or attacks the
# grader. run.sh lays each out as a submission (its files, the reference
# beside them as reference_raft.h, kit.h naming the kit's folder), grades
# it in secure mode (build/grade's default), and checks the verdicts in the
# JSON report; every case's JSON and JUnit reports must parse strictly.
#   grader/selftest/run.sh [NAME...]     (from the kit's root; default: all)
#   grader/selftest/run.sh --list        the cases' names
# Kinds of case:
#   grade    two tests, the broken one first: each gets its verdict, and the
#            first one's report holds the text (so the second still ran)
#   refused  the build is refused (verdict "build refused"); the text is a
#            ';'-separated list that the report must name, each
#   build    the build fails (verdict "grader error"), with the text
#   escape   built by the Makefile (no symbol policy: the sandbox alone is
#            tested), graded with --binary: both tests pass, nothing of the
#            kit changes, no process of the test outlives the grader
#   kvbug    the reference (raft/ and kvraft/) with one classic bug (or bad output) of the
#            key/value stage, made by the folder's sed scripts (NAME.c.sed
#            edits kvraft/NAME.c); then as grade
#   correct  a correct Raft of another design: every test of 3A-3D and
#            4A (the reference's kvraft/ on this Raft) passes in sim mode
#            (seed 1; make test sweeps more seeds of some), and
#            raftlab's own tests (the points file's "# ours") pass in real
#            time too
#   grader   not a folder: checks of the grader itself (see grader_checks)
# Prints one line per case and exits 0 only if every case got its verdicts.
set -u
cd "$(dirname "$0")/../.." || exit 2
GRADE=${GRADE:-build/grade}
KIT=$(pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/raftlab-selftest.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

# kind | name | grade options | first verdict | second verdict | text
CASES=(
  "grade|segv_make|--run InitialElection3A,ReElection3A|crashed|crashed|SIGSEGV"
  "grade|loop_start|--timeout 8 --run BasicAgree3B,InitialElection3A|timed out|passed|no result after 8 s"
  "grade|lock_across_apply|--run BasicAgree3B,InitialElection3A|timed out|passed|from inside apply"
  "grade|deadlock_handler|--timeout 12 --run InitialElection3A,ReElection3A|timed out|timed out|no result"
  "grade|heap_overflow|--valgrind memcheck --run InitialElection3A,ReElection3A|memory errors|memory errors|Invalid write"
  "grade|use_after_free|--san address --run InitialElection3A,ReElection3A|memory errors|memory errors|heap-use-after-free"
  "grade|leak_kill|--valgrind memcheck --run InitialElection3A,ReElection3A|leaked|leaked|definitely lost"
  "grade|thread_after_kill|--run InitialElection3A,ReElection3A|failed|failed|still running after raft_kill"
  "grade|output_flood|--fsize-limit 32 --run InitialElection3A,ReElection3A|resource limit|resource limit|SIGXFSZ"
  "grade|exit_midtest|--run InitialElection3A,ReElection3A|failed|failed|exited with status 0"
  "grade|threads_unbounded|--run InitialElection3A,ReElection3A|resource limit|resource limit|threads running"
  "grade|race_term|--san thread --run InitialElection3A,ReElection3A|data race|data race|data race"
  "grade|forge_result|--run InitialElection3A,ReElection3A|failed|failed|exited with status 0"
  "grade|hostile_output|--run InitialElection3A,ReElection3A|crashed|crashed|SIGSEGV"
  "refused|symbols_refused|--run InitialElection3A|||defines the global symbol nanosleep;CU_assertImplementation;labrpc_net_total_count;uses mprotect;uses kill;uses dlsym;uses syscall;((constructor));((section));asm"
  "build|include_kit|--run InitialElection3A|||the build failed"
  "escape|escape|--run InitialElection3A,BasicAgree3B|passed|passed|"
  "kvbug|kv_no_dedup|--run UnreliableOneKey4B,Basic4A|failed|passed|executed twice"
  "kvbug|kv_lost_put|--run PersistPartitionUnreliableLinearizable4B,Basic4A|failed|passed|not linearizable"
  "kvbug|rsm_bad_result|--run Basic4A,InitialElection3A|failed|passed|not the 8 bytes do_op gave"
  "kvbug|rsm_bad_snapshot|--run Snapshot4A,Basic4A|failed|passed|restore got"
  "correct|plain_raft||||"
  "correct|second_raft||||"
  "grader|grader_checks||||"
)

if [ "${1:-}" = --list ]; then
  for c in "${CASES[@]}"; do
    IFS='|' read -r _ name _ <<<"$c"
    echo "$name"
  done
  exit 0
fi

pass=0
fail=0

# verdict_of JSON TEST: the verdict field of TEST's line (one test a line).
verdict_of() {
  grep -F "\"name\": \"$2\"" "$1" | sed -n 's/.*"verdict": "\([^"]*\)".*/\1/p'
}

# reports_parse JSON XML: both parse with strict parsers (valid UTF-8).
reports_parse() {
  python3 - "$1" "$2" <<'EOF'
import json, sys, xml.dom.minidom
json.load(open(sys.argv[1], encoding="utf-8", errors="strict"))
xml.dom.minidom.parse(sys.argv[2])
EOF
}

# layout NAME: the case as a submission, in $tmp/cases/NAME; prints the path.
layout() {
  local impl="$tmp/cases/$1" f
  if [ "${2:-}" = kvbug ]; then
    mkdir -p "$impl" && cp -r solution/raft solution/kvraft "$impl/" || exit 2
    for f in "grader/selftest/$1/"*.c.sed; do
      f=$(basename "$f" .sed)
      sed -f "grader/selftest/$1/$f.sed" "solution/kvraft/$f" >"$impl/kvraft/$f" || exit 2
      cmp -s "solution/kvraft/$f" "$impl/kvraft/$f" && { echo "$1: $f.sed changed nothing" >&2; exit 2; }
    done
    chmod -R a+rX "$tmp/cases" || exit 2
    echo "$impl"
    return
  fi
  mkdir -p "$impl/raft" &&
    cp "grader/selftest/$1/raft/"* grader/selftest/selftest.h solution/raft/raft_tuning.h \
      "$impl/raft/" &&
    cp solution/raft/raft.c "$impl/raft/reference_raft.h" &&
    printf '#define KIT "%s"\n#define KIT_REFERENCE "%s/solution/raft/raft.c"\n' "$KIT" "$KIT" \
      >"$impl/raft/kit.h" &&
    chmod -R a+rX "$tmp/cases" || exit 2
  # A correct Raft carries the reference's stage 4 (kvraft/): the rsm and
  # the key/value service must hold on any correct Raft.
  if [ "$2" = correct ]; then
    mkdir -p "$impl/kvraft" && cp solution/kvraft/* "$impl/kvraft/" &&
      chmod -R a+rX "$impl/kvraft" || exit 2
  fi
  echo "$impl"
}

# The grader's own promises, on the skeleton (fast: its tests fail at once).
grader_checks() {
  local why="" out rc
  # A test named twice runs once; points never exceed the points file's.
  "$GRADE" --impl labs --lab 3A --run 'InitialElection3A,InitialElection3A,Initial*' \
    --json "$tmp/dup.json" --junit "$tmp/dup.xml" >"$tmp/dup.log" 2>&1
  rc=$?
  [ $rc -eq 1 ] || why="$why; duplicate run: exit $rc"
  [ "$(grep -c '"name": "Test' "$tmp/dup.json" 2>/dev/null)" = 1 ] ||
    why="$why; a test named twice gave other than one entry"
  grep -q '"max_points": 5,' "$tmp/dup.json" || why="$why; max_points is not 5"
  reports_parse "$tmp/dup.json" "$tmp/dup.xml" 2>/dev/null || why="$why; the reports do not parse"
  # A points file that names a test twice is an error, not double points.
  printf 'TestInitialElection3A 5\nTestInitialElection3A 5\n' >"$tmp/dup-points.txt"
  out=$("$GRADE" --impl labs --points "$tmp/dup-points.txt" 2>&1)
  rc=$?
  [ $rc -eq 2 ] && printf '%s' "$out" | grep -q "listed twice" ||
    why="$why; a points file naming a test twice: exit $rc"
  # A folder name that a shell would run: no shell ever sees it.
  local odd="$tmp/cases/x\$(touch $tmp/PWNED)\`touch $tmp/PWNED2\`y"
  mkdir -p "$odd/raft" && cp labs/raft/raft.c "$odd/raft/"
  "$GRADE" --impl "$odd" --run InitialElection3A --json "$tmp/odd.json" >"$tmp/odd.log" 2>&1
  rc=$?
  [ $rc -eq 1 ] || why="$why; odd folder name: exit $rc"
  [ ! -e "$tmp/PWNED" ] && [ ! -e "$tmp/PWNED2" ] || why="$why; a shell ran the folder's name"
  [ "$(verdict_of "$tmp/odd.json" TestInitialElection3A)" = failed ] ||
    why="$why; odd folder name: not graded"
  printf '%s' "${why#; }"
}

# all_passed JSON: every test's verdict is "passed" (and there is one).
all_passed() {
  python3 - "$1" <<'EOF'
import json, sys
tests = [t for t in json.load(open(sys.argv[1]))["tests"] if t["name"].startswith("Test")]
bad = ["%s: %s" % (t["name"], t["verdict"]) for t in tests if t["verdict"] != "passed"]
print("; ".join(bad) if bad else ("" if tests else "no test ran"))
EOF
}

# A correct Raft of another design passes every test: sim mode, then our
# own tests in real time.
correct_checks() {
  local impl=$1 name=$2 why="" rc bad ours
  # Stage 4 up to 4A (the rsm on this Raft): 4B and 4C cost a minute more
  # in sim mode, and test the service more than the Raft.
  RAFTLAB_SEED=1 NO_COLOR=1 "$GRADE" --impl "$impl" --sim --run '*3A,*3B,*3C,*3D,*4A' \
    --logs "$tmp/logs-$name-sim" \
    --json "$tmp/$name-sim.json" --junit "$tmp/$name-sim.xml" >"$tmp/$name-sim.log" 2>&1
  rc=$?
  reports_parse "$tmp/$name-sim.json" "$tmp/$name-sim.xml" 2>/dev/null || why="$why; the reports do not parse"
  bad=$(all_passed "$tmp/$name-sim.json" 2>&1)
  [ $rc -eq 0 ] && [ -z "$bad" ] || why="$why; sim mode: exit $rc: $bad"
  ours=$(sed -n 's/^Test\([A-Za-z0-9]*\) .*# ours.*/\1/p' grader/points.txt | paste -sd,)
  NO_COLOR=1 "$GRADE" --impl "$impl" --run "$ours" --jobs 1 --logs "$tmp/logs-$name-rt" \
    --json "$tmp/$name-rt.json" --junit "$tmp/$name-rt.xml" >"$tmp/$name-rt.log" 2>&1
  rc=$?
  bad=$(all_passed "$tmp/$name-rt.json" 2>&1)
  [ $rc -eq 0 ] && [ -z "$bad" ] || why="$why; real time: exit $rc: $bad"
  [ -n "$why" ] && grep -h "failed:" "$tmp/$name-sim.log" "$tmp/$name-rt.log" | head -3 >&2
  printf '%s' "${why#; }"
}

for c in "${CASES[@]}"; do
  IFS='|' read -r kind name opts v1 v2 text <<<"$c"
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
    continue
  fi
  json="$tmp/$name.json"
  xml="$tmp/$name.xml"
  log="$tmp/$name.log"
  start=$(date +%s)
  why=""
  if [ "$kind" = grader ]; then
    why=$(grader_checks)
  elif [ "$kind" = correct ]; then
    why=$(correct_checks "$(layout "$name" correct)" "$name")
  else
    impl=$(layout "$name" "$kind")
    gopts=(--impl "$impl")
    if [ "$kind" = escape ]; then
      bin="build/$(printf '%s' "$impl" | tr / _)/raft_test" # the Makefile's RAFT_TEST
      make -s --no-print-directory raft_test IMPL="$impl" >/dev/null 2>"$tmp/make.log"
      [ -x "$bin" ] || { why="could not build the case: $(tail -5 "$tmp/make.log")"; }
      gopts=(--binary "$bin")
      sum_before=$(cat grader/*.c grader/*.h | md5sum)
    fi
    # shellcheck disable=SC2086 # opts are words
    NO_COLOR=1 "$GRADE" "${gopts[@]}" $opts --logs "$tmp/logs-$name" \
      --json "$json" --junit "$xml" >"$log" 2>&1
    rc=$?
    reports_parse "$json" "$xml" 2>"$tmp/parse.log" ||
      why="$why; the reports do not parse: $(tail -1 "$tmp/parse.log")"
    case $kind in
    grade|escape|kvbug)
      tests=$(printf '%s\n' "$opts" | sed -n 's/.*--run \([^ ]*\).*/\1/p')
      t1=Test${tests%%,*}
      t2=Test${tests##*,}
      got1=$(verdict_of "$json" "$t1" 2>/dev/null)
      got2=$(verdict_of "$json" "$t2" 2>/dev/null)
      want_rc=1
      [ "$v1" = passed ] && [ "$v2" = passed ] && want_rc=0
      [ "$rc" -eq $want_rc ] || why="$why; grade exited $rc (expected $want_rc)"
      [ "$got1" = "$v1" ] || why="$why; $t1: '$got1', expected '$v1'"
      [ "$got2" = "$v2" ] || why="$why; $t2: '$got2', expected '$v2'"
      if [ "$kind" != escape ]; then
        grep -F "\"name\": \"$t1\"" "$json" 2>/dev/null | grep -qF -- "$text" ||
          why="$why; $t1's report lacks '$text'"
        grep -qF "rerun:  make grade IMPL=$impl RUN=$t1" "$log" ||
          why="$why; no rerun command for $t1"
      else
        [ "$(cat grader/*.c grader/*.h | md5sum)" = "$sum_before" ] ||
          why="$why; the kit's grader/ changed"
        [ ! -e "$KIT/raftlab-pwned" ] || why="$why; a file appeared in the kit"
        pgrep -x raftlab-stray >/dev/null && why="$why; a process of the test outlived the grader"
        why="$why$(grep -h ESCAPED "$tmp/logs-$name"/* 2>/dev/null | head -3 | sed 's/^/; /' | tr -d '\n')"
      fi
      ;;
    refused|build)
      want=$([ "$kind" = refused ] && echo "build refused" || echo "grader error")
      want_rc=$([ "$kind" = refused ] && echo 1 || echo 2)
      got=$(verdict_of "$json" build 2>/dev/null)
      [ "$rc" -eq "$want_rc" ] || why="$why; grade exited $rc (expected $want_rc)"
      [ "$got" = "$want" ] || why="$why; build: '$got', expected '$want'"
      grep -q '"name": "Test' "$json" 2>/dev/null && why="$why; tests ran"
      IFS=';' read -ra needles <<<"$text"
      for n in "${needles[@]}"; do
        grep -F '"name": "build"' "$json" 2>/dev/null | grep -qF -- "$n" ||
          why="$why; the report does not name '$n'"
      done
      ;;
    esac
  fi
  secs=$(( $(date +%s) - start ))
  if [ -z "$why" ]; then
    pass=$((pass + 1))
    printf '  ok    %-18s %-8s %-15s %-15s %4ss\n' "$name" "$kind" "$v1" "$v2" "$secs"
  else
    fail=$((fail + 1))
    printf '  FAIL  %-18s %s\n' "$name" "${why#; }"
    [ -f "$log" ] && sed 's/^/        | /' "$log" | tail -n 40
  fi
done
echo "selftest: $pass passed, $fail failed"
[ $fail -eq 0 ]
