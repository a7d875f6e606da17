#!/usr/bin/env bash
# The pictures of runs (grader/trace), checked in a real browser: headless
# Chromium (tools/deps.sh --test installs Debian's).
#
#   check.sh make DIR        grade a Raft with a classic bug (vote_twice.sed on
#                            the reference), a key/value service that
#                            executes retries twice (the kv_no_dedup self-test)
#                            and more, and leave their pictures in DIR: sim.html
#                            (seed 1), sim-memcheck.html (the same, under
#                            valgrind), real.html (real time: a Raft whose
#                            servers all say they lead, all_lead.sed, which
#                            fails every time), kv.html (stage 4, sim),
#                            lin.html (a Put lost: not linearizable, sim)
#   check.sh same A B        A and B show the same trace (same seed, native and
#                            under memcheck)
#   check.sh page FILE SERVERS [CLIENTS [lin]]
#                            FILE renders with no script error, with a lane for
#                            each server (and at least CLIENTS client lanes),
#                            RPC arrows and the failure marker; the failure it
#                            shows is the one its run's log (FILE without .html)
#                            printed, at the same virtual time in sim mode; a
#                            screenshot of it is not blank; with lin, it marks
#                            the ops of the longest order and those that
#                            cannot come next
# Exit 0 when the check holds; otherwise what differs, on stderr.
set -u
cd "$(dirname "$0")/../../.." || exit 2
BUILD=${BUILD:-build}

die() { echo "check.sh: $*" >&2; exit 1; }

chromium_run() {
  timeout -k 5 90 chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-extensions --user-data-dir="$tmp/profile" "$@" 2>"$tmp/chromium.err"
}

case "${1:-}" in
make)
  out=${2:?usage: check.sh make DIR}
  mkdir -p "$out" || exit 2
  tmp=$(mktemp -d) || exit 2
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/vote_twice" "$tmp/all_lead" "$tmp/kv" "$tmp/lin" || exit 2
  cp -r solution/raft "$tmp/all_lead/" || exit 2
  sed -f grader/trace/tests/all_lead.sed solution/raft/raft.c >"$tmp/all_lead/raft/raft.c" || exit 2
  cmp -s solution/raft/raft.c "$tmp/all_lead/raft/raft.c" && die "all_lead.sed changed nothing"
  cp -r solution/raft "$tmp/vote_twice/" && cp -r solution/raft solution/kvraft "$tmp/kv/" || exit 2
  sed -f grader/trace/tests/vote_twice.sed solution/raft/raft.c >"$tmp/vote_twice/raft/raft.c" || exit 2
  cmp -s solution/raft/raft.c "$tmp/vote_twice/raft/raft.c" && die "vote_twice.sed changed nothing"
  sed -f grader/selftest/kv_no_dedup/server.c.sed solution/kvraft/server.c >"$tmp/kv/kvraft/server.c" || exit 2
  cp -r solution/raft solution/kvraft "$tmp/lin/" || exit 2
  sed -f grader/selftest/kv_lost_put/server.c.sed solution/kvraft/server.c >"$tmp/lin/kvraft/server.c" || exit 2
  # grade NAME IMPL SEED ARGS...: one failing run, its picture copied to DIR/NAME.html
  grade() {
    local name=$1 impl=$2 seed=$3
    shift 3
    rm -rf "$tmp/logs-$name"
    env ${seed:+RAFTLAB_SEED=$seed} NO_COLOR=1 "$BUILD/grade" --impl "$impl" --no-secure --logs "$tmp/logs-$name" \
      "$@" >"$tmp/$name.out" 2>&1
    local pic log
    pic=$(sed -n 's/^ *picture: \([^ ]*\).*/\1/p' "$tmp/$name.out" | head -n 1)
    [ -n "$pic" ] && [ -s "$pic" ] || { cat "$tmp/$name.out" >&2; die "$name: the failing run printed no picture"; }
    log=${pic%.html}.log
    cp "$pic" "$out/$name.html" && cp "$log" "$out/$name" || exit 2
  }
  grade sim "$tmp/vote_twice" 1 --sim --run OneVotePerTerm3A
  grade sim-memcheck "$tmp/vote_twice" 1 --sim --valgrind memcheck --run OneVotePerTerm3A
  grade real "$tmp/all_lead" '' --run InitialElection3A
  grade kv "$tmp/kv" 1 --sim --run UnreliableOneKey4B
  grade lin "$tmp/lin" 1 --sim --run PersistPartitionUnreliableLinearizable4B
  ;;
same)
  a=${2:?}; b=${3:?}
  cmp -s "$a" "$b" || die "$a and $b differ: one seed gave two traces"
  ;;
page)
  file=${2:?usage: check.sh page FILE SERVERS [CLIENTS]}
  servers=${3:?}
  clients=${4:-0}
  lin=${5:-}
  log=${file%.html}
  [ -s "$file" ] && [ -s "$log" ] || die "$file or $log is missing"
  tmp=$(mktemp -d) || exit 2
  trap 'rm -rf "$tmp"' EXIT
  url="file://$(realpath "$file")"
  chromium_run --dump-dom "$url" >"$tmp/dom.html" || die "chromium could not open $file: $(tail -n 3 "$tmp/chromium.err")"
  chromium_run --hide-scrollbars --window-size=1400,900 --screenshot="$tmp/shot.png" "$url" >/dev/null ||
    die "chromium could not take a screenshot of $file"
  python3 - "$tmp/dom.html" "$log" "$tmp/shot.png" "$servers" "$clients" "$lin" <<'EOF' || exit 1
import html, re, struct, sys, zlib
dom, log, shot, servers, clients = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
lin = sys.argv[6] == "lin"
d = open(dom, encoding="utf-8").read()
bad = []
body = re.search(r"<body([^>]*)>", d)
attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1))) if body else {}
if attrs.get("errors") != "0":
    bad.append(f"script errors: {attrs.get('errors')!r}")
if attrs.get("ready") != "1":
    bad.append("the page never finished its first drawing (data-ready is not 1)")
lanes = re.findall(r'<g[^>]*class="lane[^"]*"[^>]*data-p="([sc]\d+)"', d)
if sum(1 for p in set(lanes) if p[0] == "s") != servers:
    bad.append(f"server lanes: {sorted(set(lanes))}, expected {servers}")
if sum(1 for p in set(lanes) if p[0] == "c") < clients:
    bad.append(f"client lanes: {sorted(set(lanes))}, expected at least {clients}")
if not re.search(r'class="rpc[ "]', d):
    bad.append("no RPC arrow")
if lin and not (re.search(r'class="op[^"]* lin[ "]', d) and re.search(r'class="op[^"]* unlin[ "]', d)):
    bad.append("no op marked as linearized (lin) and as unplaceable (unlin)")
marker = re.search(r'<[^>]*id="failure-marker"[^>]*>', d)
if not marker:
    bad.append("no failure marker")
# the failure the page shows is the log's
text = open(log, encoding="utf-8", errors="replace").read()
m = re.search(r"\.\.\. Failed --  \S+: (.*)", text)
if not m:
    bad.append(f"{log} has no failure line")
else:
    msg = m.group(1).strip()
    shown = html.unescape(re.sub(r"<[^>]+>", "", d))
    if msg[:150] not in shown:
        bad.append(f"the page does not show the log's failure: {msg[:150]!r}")
    vt = re.search(r"virtual time ([0-9.]+) s into the test", msg)
    if vt and marker:
        t = re.search(r'data-t-ms="([0-9.]+)"', marker.group(0))
        if not t or abs(float(t.group(1)) / 1000 - float(vt.group(1))) > 0.002:
            bad.append(f"the failure marker is at {t.group(1) if t else '?'} ms, the log says {vt.group(1)} s")
# not blank: the image's bytes (after inflating, before unfiltering) are
# mostly zero for a page of one colour
png = open(shot, "rb").read()
if png[:8] != b"\x89PNG\r\n\x1a\n":
    bad.append("the screenshot is not a PNG")
else:
    i, idat = 8, b""
    while i < len(png):
        n, kind = struct.unpack(">I4s", png[i:i + 8])
        if kind == b"IDAT":
            idat += png[i + 8:i + 8 + n]
        i += 12 + n
    raw = zlib.decompress(idat)
    busy = sum(1 for b in raw if b) / max(1, len(raw))
    if busy < 0.02:
        bad.append(f"the screenshot looks blank ({busy:.1%} of its bytes non-zero)")
for b in bad:
    print(f"check.sh: {log}.html: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
  ;;
*)
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
