#!/usr/bin/env bash
# explore.sh: runs one test over many seeds in sim mode (make explore).
#
#   sim/explore.sh <sim raft_test> <test> <seeds> <jobs> [first seed]
#
# Runs seeds first .. first+seeds-1 (first: random unless given), jobs at a
# time, and prints the pass count and, for each failing seed, its first
# failure line and the command that replays it. Logs of failing runs stay
# in <binary's folder>/explore/<test>/<seed>.log. Exit status 0 iff all passed.
set -u
LIMIT=300   # real seconds per run; a sim run of a good solution takes < 5 s

if [ $# -lt 4 ] || [ $# -gt 5 ]; then
    echo "usage: $0 <sim raft_test> <test> <seeds> <jobs> [first seed]" >&2
    exit 2
fi
BIN=$1 RUN=$2 SEEDS=$3 JOBS=$4 FIRST=${5:-}
if [ -z "$RUN" ]; then
    echo "explore: say which test: make explore RUN=<test> SEEDS=<n> JOBS=<j>" >&2
    exit 2
fi
case "$RUN" in Test*) ;; *) RUN=Test$RUN ;; esac
if ! "$BIN" --list | grep -qx -- "$RUN"; then
    echo "explore: no test '$RUN'; the tests are:" >&2
    "$BIN" --list | sed 's/^/  /' >&2
    exit 2
fi
for v in SEEDS JOBS; do
    case "${!v}" in ''|*[!0-9]*|0) echo "explore: $v must be a positive number, not '${!v}'" >&2; exit 2 ;; esac
done
case "$FIRST" in
    '') FIRST=$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000000 )) ;;
    *[!0-9]*) echo "explore: SEED must be a number, not '$FIRST'" >&2; exit 2 ;;
esac
LAST=$((FIRST + SEEDS - 1))
REPLAY=${RAFTLAB_SIM_REPLAY:-make grade SIM=1}
LOGS=$(dirname "$BIN")/explore/$RUN
rm -rf "$LOGS" && mkdir -p "$LOGS" || exit 2

echo "explore: $RUN, seeds $FIRST..$LAST, $JOBS at a time"
start=$(date +%s.%N)
# Each run writes "<seed> <exit status>" to its own file.
run_one() {
    RAFTLAB_SEED=$1 timeout -k 5 "$LIMIT" "$BIN" "$RUN" >"$LOGS/$1.log" 2>&1
    echo "$1 $?" >"$LOGS/$1.rc"
}
export -f run_one
export BIN RUN LOGS LIMIT
seq "$FIRST" "$LAST" | xargs -P "$JOBS" -I{} bash -c 'run_one {}'

pass=0
fails=()
for s in $(seq "$FIRST" "$LAST"); do
    read -r _ rc <"$LOGS/$s.rc" 2>/dev/null || rc=missing
    rm -f "$LOGS/$s.rc"
    if [ "$rc" = 0 ]; then
        pass=$((pass + 1))
        rm -f "$LOGS/$s.log"
    else
        fails+=("$s:$rc")
    fi
done
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "explore: $pass/$SEEDS seeds passed ($secs s real time)"
for f in "${fails[@]+"${fails[@]}"}"; do
    s=${f%%:*} rc=${f#*:}
    why=$(grep -m1 -e '\.\.\. Failed' -e '^sim: deadlock' -e '^sim: busy loop' "$LOGS/$s.log" | sed 's/^ *//' | cut -c1-150)
    [ -n "$why" ] || why="exit status $rc"
    echo "  seed $s: $why"
    echo "    replay: $REPLAY SEED=$s RUN=$RUN    (log: $LOGS/$s.log)"
done
[ ${#fails[@]} -eq 0 ]
