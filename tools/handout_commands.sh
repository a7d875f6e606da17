#!/usr/bin/env bash
# Every command the handouts and the README show a student or an instructor,
# checked the cheap way (make test): a `make grade ...` line with DRY=1 (the
# grader checks its variables and the tests they name, builds and runs
# nothing), `build/grade ...` with --dry-run, another make target with
# make -n, a raft_test line by the names it uses. A command that the kit no
# longer accepts (a renamed test, a dropped variable) fails here, not in a
# student's first week.
#   tools/handout_commands.sh            check them all
#   tools/handout_commands.sh --list     print what would be checked
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
DOCS=(README.md handouts/*.md)

# The commands of the fenced code blocks: "file:line: command", comments
# and continuation lines joined; lines of shell loops (with $) left out.
commands() {
  awk '
    FNR == 1 { fence = 0; acc = "" }
    /^[ \t]*```/ { fence = !fence; next }
    !fence { next }
    {
      line = $0
      sub(/^[ \t]+/, "", line)
      if (acc != "") { acc = acc " " line } else { acc = line; at = FILENAME ":" FNR }
      if (acc ~ /\\$/) { sub(/\\$/, "", acc); next }
      cmd = acc; acc = ""
      sub(/[ \t]+#.*$/, "", cmd)
      if (cmd ~ /\$/) next
      if (cmd ~ /^(RAFT_VERBOSE=[^ ]+ )?make( |$)/ || cmd ~ /^build\// || cmd ~ /^gdb --args build\//)
        print at ": " cmd
    }' "${DOCS[@]}"
}

tests_list=$("$BUILD/grade" --dry-run --impl labs 2>/dev/null | sed -n 's/^  \(Test.*\)/\1/p')
# has_test NAME: raft_test knows the test.
has_test() { printf '%s\n' "$tests_list" | grep -qx -- "$1"; }

# check_one CMD: 0 if the kit accepts it.
check_one() {
  local cmd=$1 part rc=0
  # a && b: each part on its own.
  while [ -n "$cmd" ]; do
    part=${cmd%% && *}
    [ "$part" = "$cmd" ] && cmd="" || cmd=${cmd#* && }
    # Instructors' examples name a submission folder: use the skeleton's.
    part=${part//\/submissions\/alice\/labs/labs}
    read -r -a w <<<"$part"
    case "$part" in
    "RAFT_VERBOSE="*" make grade"*|"make grade"*)
      env "${w[@]}" DRY=1 >/dev/null || rc=1 ;;
    make\ *)
      make -n "${w[@]:1}" >/dev/null || rc=1 ;;
    "build/grade "*)
      "$BUILD/grade" "${w[@]:1}" --dry-run >/dev/null || rc=1 ;;
    "build/labs/raft_test "*|"gdb --args build/labs/raft_test "*)
      local t
      for t in "${w[@]}"; do
        case "$t" in
        Test*) has_test "$t" || { echo "no test $t"; rc=1; } ;;
        --list) "$BUILD/labs/raft_test" "${w[@]: -2}" >/dev/null || rc=1 ;;
        esac
      done ;;
    *) ;;  # other build/ programs: nothing cheap to check
    esac
  done
  return $rc
}

if [ "${1:-}" = --list ]; then
  commands
  exit 0
fi
[ -n "$tests_list" ] || { echo "build/grade --dry-run lists no test: build the kit first (make)"; exit 2; }
n=0 bad=0
while IFS= read -r entry; do
  n=$((n + 1))
  where=${entry%%: *}
  cmd=${entry#*: }
  if ! out=$(check_one "$cmd" 2>&1); then
    bad=$((bad + 1))
    echo "FAIL $where: $cmd"
    printf '%s\n' "$out" | tail -n 5 | sed 's/^/     | /'
  fi
done < <(commands)
echo "$n handout commands checked, $bad not accepted"
# So that a change to the extraction cannot check nothing and pass.
[ "$n" -ge 30 ] || { echo "expected at least 30 commands in the handouts"; exit 1; }
[ $bad -eq 0 ]
