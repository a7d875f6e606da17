#!/usr/bin/env bash
# run.sh: the paper's Figure 16 (make figure16).
#
#   sim/figure16/run.sh <figure16> <figure16_plot> <out dir> <trials> <jobs> <seed> [ranges]
#
# Runs figure16 once per range of election timeouts (the paper's eleven by
# default, or a comma-separated list such as "150-155,12-24"), jobs at a
# time, each with its own seed (seed, seed+1, ...; random if empty), then
# figure16_plot for the table and <out dir>/figure16.svg. trials: per range
# (default 1000, and 100 for 150-150 as in the paper). Exit status 0 iff
# every range ran.
set -u
if [ $# -lt 6 ] || [ $# -gt 7 ]; then
    echo "usage: $0 <figure16> <figure16_plot> <out dir> <trials> <jobs> <seed> [ranges]" >&2
    exit 2
fi
BIN=$1 PLOT=$2 OUT=$3 TRIALS=$4 JOBS=$5 SEED=$6
RANGES=${7:-150-150,150-151,150-155,150-175,150-200,150-300,12-24,25-50,50-100,100-200}
for v in TRIALS JOBS SEED; do
    case "${!v}" in *[!0-9]*) echo "figure16: $v must be a number, not '${!v}'" >&2; exit 2 ;; esac
done
case "$JOBS" in ''|0) JOBS=2 ;; esac
[ -n "$SEED" ] || SEED=$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000000 ))
mkdir -p "$OUT" || exit 2
rm -f "$OUT"/*.trials "$OUT"/*.log

echo "figure16: 5 servers of the reference solution in sim mode; requests take 2-4 ms and"
echo "replies 8-12 ms (a broadcast time of about 15 ms); heartbeats every min/2 ms; PreVote"
echo "and check quorum off; ranges $RANGES,"
echo "$JOBS at a time, seeds from $SEED; replay one range: make figure16 RANGES=<range> SEED=<its seed>"
i=0
jobs_list=()
for r in ${RANGES//,/ }; do
    n=$TRIALS
    [ -n "$n" ] || { [ "$r" = 150-150 ] && n=100 || n=1000; }
    jobs_list+=("$r $n $((SEED + i))")
    i=$((i + 1))
done
start=$(date +%s.%N)
run_one() {
    set -- $1
    local t0 rc
    t0=$(date +%s.%N)
    RAFTLAB_SEED=$3 "$BIN" --range "$1" --trials "$2" --out "$OUT/$1.trials" >"$OUT/$1.log" 2>&1
    rc=$?
    printf '  %-8s seed %-10s %s (%.1f s real)\n' "$1" "$3" \
        "$( [ $rc = 0 ] && grep '^figure16:' "$OUT/$1.log" | sed 's/^figure16: [^:]*: //' || echo "FAILED (exit $rc): $(tail -3 "$OUT/$1.log" | tr '\n' ' ')")" \
        "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')"
    return $rc
}
export -f run_one
export BIN OUT
printf '%s\n' "${jobs_list[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one "{}"'
rc=$?
printf 'figure16: %.0f s real in all\n\n' "$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { print a - b }')"
files=()
for r in ${RANGES//,/ }; do
    [ -s "$OUT/$r.trials" ] && files+=("$OUT/$r.trials")
done
[ ${#files[@]} -gt 0 ] && { "$PLOT" --svg "$OUT/figure16.svg" "${files[@]}" || rc=1; }
[ $rc = 0 ] || echo "figure16: some ranges failed; their logs are in $OUT" >&2
exit $rc
