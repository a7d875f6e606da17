#!/usr/bin/env bash
# handout_snippets.sh: the handouts' code and commands, used as a student
# would use them (make test runs each check). debugging.md's logging
# snippet is pasted into a copy of the reference, with a log call where the
# lock is held, and graded in secure mode (the rules' symbol policy) with
# RAFT_VERBOSE=1 under helgrind, DRD and ThreadSanitizer: none may report
# a race. "log" runs the guide's command for keeping a run's log and reads
# the log where the guide says it is.
#   tools/handout_snippets.sh helgrind|drd|thread|log
set -u
cd "$(dirname "$0")/.." || exit 2
GRADE=${GRADE:-build/grade}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/raftlab-snippets.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
impl=$tmp/dlog
mkdir -p "$impl/raft" && cp solution/raft/raft_tuning.h "$impl/raft/" || exit 2
python3 - handouts/debugging.md solution/raft/raft.c "$impl/raft/raft.c" <<'PY' || exit 2
import re, sys
doc = open(sys.argv[1]).read()
snippet = next(b for b in re.findall(r"```c\n(.*?)```", doc, re.S) if "#define DLOG" in b)
src = open(sys.argv[2]).read()
head = "static void reset_election_timer(raft *rf)\n{\n"
assert src.count(head) == 1, "the reference has no reset_election_timer to log from"
src = src.replace(head, snippet + "\n" + head +
                  '    DLOG(rf, 1, "TIMER", "election timer reset");\n')
open(sys.argv[3], "w").write(src)
PY
chmod -R a+rX "$tmp"
out=$tmp/out.txt
# Under a race checker the verdict must not be a race (or a crash, or a
# refused build); "failed" is a timing failure of a run slowed 20-50 times,
# which says nothing about the snippet.
checked() {
  RAFT_VERBOSE=1 "$GRADE" --impl "$impl" "$@" --run InitialElection3A --json "$tmp/r.json" \
    >"$out" 2>&1
  grep -Eq '"name": "TestInitialElection3A".*"verdict": "(passed|failed)"' "$tmp/r.json"
}
case ${1:-} in
helgrind|drd) checked --valgrind "$1" ;;
thread) checked --san thread ;;
log)
  RAFT_VERBOSE=1 make -s --no-print-directory grade IMPL="$impl" RUN=TestInitialElection3A \
    >"$out" 2>&1 &&
    grep -q ' TIMER ' build/grade-logs/latest/TestInitialElection3A.1.log ||
    { echo "no TIMER line in build/grade-logs/latest/TestInitialElection3A.1.log" >>"$out"; false; } ;;
*)
  echo "usage: $0 helgrind|drd|thread|log" >&2
  exit 2 ;;
esac
rc=$?
[ $rc -eq 0 ] || tail -n 30 "$out"
exit $rc
