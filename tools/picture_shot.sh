#!/usr/bin/env bash
# tools/picture_shot.sh HTML PNG [WIDTH,HEIGHT]: a screenshot of a run's
# picture in headless Chromium (the debugging guide's is made this way from
# the sim picture of grader/trace/tests/check.sh make).
set -u
[ $# -ge 2 ] || { echo "usage: tools/picture_shot.sh HTML PNG [WIDTH,HEIGHT]" >&2; exit 2; }
[ -s "$1" ] || { echo "picture_shot: no file $1" >&2; exit 1; }
command -v chromium >/dev/null 2>&1 || { echo "picture_shot: chromium is missing: tools/deps.sh --test installs it" >&2; exit 1; }
profile=$(mktemp -d) || exit 2
trap 'rm -rf "$profile"' EXIT
timeout -k 5 90 chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
  --user-data-dir="$profile" --window-size="${3:-1400,900}" --screenshot="$2" "file://$(realpath "$1")" \
  >/dev/null 2>&1 && [ -s "$2" ] || { echo "picture_shot: chromium could not take it" >&2; exit 1; }
