# Sourced by the install tests of the wheel and the npm tarball; sets `repo`
# (the repository) and `here` (tests/install).
#
#   make_scratch KIND
#
# sets `scratch` (a new temporary directory) and `name` (a pool name unique
# to this run), both removed on exit however the test ends, and ends the
# test's background processes then.
#
#   two_processes DIR NAME PROGRAM...
#
# runs `PROGRAM... holder NAME` and, once it holds the slot, `PROGRAM...
# waiter NAME`, both from DIR, each writing the protocol lines below to its
# own file; fails unless the waiter found the slot taken ("would-wait"), the
# holder saw it waiting ("waiter-seen") before releasing, and the waiter was
# then granted that very slot.  Two processes of a user's program share a
# one-slot pool, and the second waits for the first one's slot.
#   holder: held <index> / waiter-seen / released
#   waiter: would-wait / granted <index>

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

make_scratch() {
  scratch=$(mktemp -d)
  name="/fairsem-$1-$$"
  # A failed test must not leave a holder looping: end our own jobs first.
  trap 'kill $(jobs -p) 2>/dev/null || true; rm -f "/dev/shm/${name#/}"; rm -rf "$scratch"' EXIT
}

wait_for_line() { # FILE LINE-PREFIX PID: until FILE has the line, or PID ends
  until grep -q "^$2" "$1" 2>/dev/null; do
    if ! kill -0 "$3" 2>/dev/null; then
      grep -q "^$2" "$1" 2>/dev/null && return 0
      echo "process $3 ended before printing '$2':" >&2
      cat "$1" >&2
      return 1
    fi
    sleep 0.05
  done
}

two_processes() {
  local dir=$1 name=$2
  shift 2
  local holder_out="$dir/holder.out" waiter_out="$dir/waiter.out" holder waiter
  (cd "$dir" && exec "$@" holder "$name") >"$holder_out" 2>&1 &
  holder=$!
  wait_for_line "$holder_out" "held " "$holder"
  (cd "$dir" && exec "$@" waiter "$name") >"$waiter_out" 2>&1 &
  waiter=$!
  local rc=0
  wait "$holder" || rc=$?
  wait "$waiter" || rc=$?
  echo "--- holder"; cat "$holder_out"; echo "--- waiter"; cat "$waiter_out"
  [ "$rc" -eq 0 ] || { echo "a process failed (exit $rc)" >&2; return 1; }
  # The order within each process, and the slot they shared.
  [ "$(grep -E '^(held|waiter-seen|released)' "$holder_out" | cut -d' ' -f1 | tr '\n' ' ')" = "held waiter-seen released " ]
  [ "$(grep -E '^(would-wait|granted)' "$waiter_out" | cut -d' ' -f1 | tr '\n' ' ')" = "would-wait granted " ]
  [ "$(grep '^held ' "$holder_out" | cut -d' ' -f2)" = "$(grep '^granted ' "$waiter_out" | cut -d' ' -f2)" ]
}
