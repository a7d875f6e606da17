#!/usr/bin/env bash
# Checks raftlab's dependencies and installs what is missing with apt when it
# can (as root, or through sudo without a password); otherwise prints the one
# command that would. Exit 0 only when everything is there.
#   tools/deps.sh          what building and grading need (make, make grade)
#   tools/deps.sh --test   that, and what the kit's own suite needs too
#                          (make test: a browser, for the pictures' checks)
set -u

missing=()
cc_cmd=${CC:-cc}
command -v "$cc_cmd" >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v make >/dev/null 2>&1 || missing+=(make)
# CUnit: the header and the library must both be there.
if ! printf '#include <CUnit/Basic.h>\nint main(void){return CU_initialize_registry();}\n' |
     "${cc_cmd}" -x c - -o /dev/null -lcunit >/dev/null 2>&1; then
  missing+=(libcunit1-dev)
fi
command -v valgrind >/dev/null 2>&1 && [ -f /usr/include/valgrind/valgrind.h ] || missing+=(valgrind)
# The grader's sandbox (secure mode), and what reads a submission's objects.
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v objdump >/dev/null 2>&1 && command -v objcopy >/dev/null 2>&1 || missing+=(binutils)
if [ "${1:-}" = --test ]; then
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y ${missing[*]}"
echo "raftlab: missing: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  sudo_cmd=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo_cmd="sudo"
else
  echo "raftlab: install them with:  sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "raftlab: no apt-get here; install the packages above with your system's package manager" >&2
  exit 1
fi
echo "raftlab: installing with apt: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq >/dev/null &&
  $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null || {
  echo "raftlab: apt could not install them; try:  sudo apt-get update && sudo $cmd" >&2
  exit 1
}
echo "raftlab: installed ${missing[*]}" >&2
