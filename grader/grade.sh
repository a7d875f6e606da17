#!/usr/bin/env bash
# grade.sh: runs the Raft tests, each in its own process, and sums up.
#
#   grader/grade.sh <raft_test binary> "<LAB or empty>" "<RUN or empty>"
#
# LAB: 3A, 3B, 3C or 3D (empty: every stage). RUN: one test, with or without
# its "Test" prefix (empty: every test of LAB). Each test runs under
# `timeout`, with a limit of 120 s plus 15 s for the harness's own watchdog
# and cleanup (the harness itself fails a test at 120 s; the outer limit only
# catches a process that is stuck for good). With VALGRIND=memcheck in the
# environment each test runs under valgrind memcheck (errors and definite
# leaks fail it) and the limit is 5 times longer.
#
# The last line is "N passed, N failed"; the exit status is 0 iff none failed.
set -u

LIMIT=120          # the per-test limit (the harness enforces it too)
GRACE=15           # for the harness's watchdog and cleanup
FACTOR=5           # under valgrind

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    echo "usage: $0 <raft_test binary> [LAB] [RUN]" >&2
    exit 2
fi
BIN=$1
LAB=${2:-}
RUN=${3:-}

if [ ! -x "$BIN" ]; then
    echo "grade: $BIN is not an executable; build it first (make raft_test)" >&2
    exit 2
fi

LAB=$(printf '%s' "$LAB" | tr '[:lower:]' '[:upper:]')
case "$LAB" in
    ""|3A|3B|3C|3D) ;;
    *)
        echo "grade: unknown LAB '$LAB'; valid stages: 3A 3B 3C 3D (or empty for all)" >&2
        exit 2 ;;
esac

if ! ALL=$("$BIN" --list $LAB); then
    echo "grade: '$BIN --list $LAB' failed" >&2
    exit 2
fi

if [ -n "$RUN" ]; then
    case "$RUN" in
        Test*) want=$RUN ;;
        *) want=Test$RUN ;;
    esac
    if ! printf '%s\n' "$ALL" | grep -qx -- "$want"; then
        if [ -n "$LAB" ]; then
            echo "grade: no test '$RUN' in stage $LAB. The tests of $LAB are:" >&2
        else
            echo "grade: no test '$RUN'. The tests are:" >&2
        fi
        printf '  %s\n' $ALL >&2
        exit 2
    fi
    TESTS=$want
else
    TESTS=$ALL
fi

limit=$((LIMIT + GRACE))
VG=()
if [ "${VALGRIND:-}" = memcheck ]; then
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "grade: VALGRIND=memcheck but valgrind is not installed (apt-get install valgrind)" >&2
        exit 2
    fi
    limit=$(( (LIMIT + GRACE) * FACTOR ))
    VG=(valgrind --fair-sched=yes --leak-check=full --errors-for-leak-kinds=definite
        --error-exitcode=99 -q)
elif [ -n "${VALGRIND:-}" ]; then
    echo "grade: VALGRIND='$VALGRIND' is not supported (only VALGRIND=memcheck)" >&2
    exit 2
fi

ulimit -c 0 2>/dev/null || true

names=()
verdicts=()
times=()
npass=0
nfail=0

for t in $TESTS; do
    start=$(date +%s.%N)
    timeout -k 5 "$limit" "${VG[@]}" "$BIN" "$t"
    rc=$?
    end=$(date +%s.%N)
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    late=$(awk -v s="$secs" -v l="$limit" 'BEGIN { print (s >= l) ? 1 : 0 }')
    if [ $rc -eq 0 ]; then
        v="passed"
    elif [ $rc -eq 124 ] || { [ $rc -eq 137 ] && [ "$late" = 1 ]; }; then
        v="timed out (${limit} s)"
    elif [ $rc -eq 99 ] && [ ${#VG[@]} -gt 0 ]; then
        v="valgrind errors"
    elif [ $rc -eq 1 ]; then
        v="failed"
    elif [ $rc -gt 128 ]; then
        sig=$(kill -l $((rc - 128)) 2>/dev/null || echo "$((rc - 128))")
        v="crashed (SIG$sig)"
    else
        v="failed (exit status $rc)"
    fi
    if [ "$v" = passed ]; then
        npass=$((npass + 1))
    else
        nfail=$((nfail + 1))
        echo "--- $t: $v"
    fi
    names+=("$t")
    verdicts+=("$v")
    times+=("$secs")
    echo
done

echo "Summary"
for k in "${!names[@]}"; do
    printf '  %-34s %-24s %7s s\n' "${names[$k]}" "${verdicts[$k]}" "${times[$k]}"
done
echo "$npass passed, $nfail failed"
[ $nfail -eq 0 ]
