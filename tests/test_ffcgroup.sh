#!/bin/sh
# test_ffcgroup: the ffcgroup command line. Bad arguments fail with exit 2
# and a message; where a writable memory cgroup exists (else skip 77, or fail
# under FFSTREAM_REQUIRE_CGROUP=1) a command that fits keeps its exit status
# and --json writes every field, and an allocator past its limit is
# OOM-killed: exit 137 and "oom_killed": true.
# Usage: test_ffcgroup.sh PATH/TO/ffcgroup PATH/TO/test_cgroup (the allocator)
set -u
FFCGROUP=$1
ALLOCATOR=$2
. "$(dirname "$0")/lib.sh"

expect_status 2 "size '12Q': unknown unit 'Q'" "$FFCGROUP" --limit 12Q -- true
expect_status 2 "expected a positive size" "$FFCGROUP" --limit 0 -- true
expect_status 2 "missing '--' before the command 'true'" "$FFCGROUP" --limit 32M true
expect_status 2 "no command after '--'" "$FFCGROUP" --limit 32M --
expect_status 2 "missing '--'" "$FFCGROUP" --limit 32M
expect_status 2 "unknown flag '--bogus'" "$FFCGROUP" --bogus --limit 32M -- true
expect_status 2 "--limit: missing value" "$FFCGROUP" --limit
expect_status 2 "--limit SIZE is required" "$FFCGROUP" -- true
# A --json that cannot be written is found before the command runs.
mkdir -p "$tmp/adir"
expect_status 2 "--json: $tmp/adir: is a directory" "$FFCGROUP" --limit 32M --json "$tmp/adir" -- \
    sh -c "touch '$tmp/ran'"
check
[ ! -e "$tmp/ran" ] && ok "--json checked before the command ran" || fail "the command ran despite a bad --json"

checks=$((checks + 1))
if "$FFCGROUP" --help | grep -qF -- "--limit SIZE"; then echo "ok: --help"; else fail "--help"; fi

# Is there a writable cgroup? ffcgroup says why not (exit 1).
"$FFCGROUP" --limit 32M --quiet -- true >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -ne 0 ]; then
    if [ "${FFSTREAM_REQUIRE_CGROUP:-0}" = 1 ]; then
        fail "no writable cgroup (exit $rc) under FFSTREAM_REQUIRE_CGROUP=1: $(cat "$tmp/err")"
        exit 1
    fi
    echo "skip: no writable memory cgroup (exit $rc): $(cat "$tmp/err")" >&2
    [ "$failures" -eq 0 ] || exit 1
    exit 77
fi

# A command that fits: exit 0, a summary line, every JSON field.
checks=$((checks + 1))
"$FFCGROUP" --limit 32M --json "$tmp/fits.json" -- sh -c 'exit 0' >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "exited with status 0, not OOM-killed" "$tmp/err"; then
    echo "ok: fits -> $(cat "$tmp/err")"
else
    fail "fits: exit $rc, $(cat "$tmp/err")"
fi
for field in '"command":' '"cgroup_version":[[:space:]]*"v[12]"' '"limit_bytes":[[:space:]]*33554432' \
    '"exit_status":[[:space:]]*0' '"signal":[[:space:]]*null' '"oom_killed":[[:space:]]*false' \
    '"oom_kills":[[:space:]]*0' '"cgroup_peak_bytes":[[:space:]]*[0-9]' \
    '"child_peak_rss_bytes":[[:space:]]*[1-9]' '"wall_seconds":[[:space:]]*[0-9]' \
    '"child_user_seconds":[[:space:]]*[0-9]' '"child_system_seconds":[[:space:]]*[0-9]'; do
    checks=$((checks + 1))
    grep -Eq -- "$field" "$tmp/fits.json" || fail "fits.json lacks $field: $(cat "$tmp/fits.json")"
done

# The command's exit status passes through; --quiet prints nothing.
expect_status 5 "" "$FFCGROUP" --limit 32M --quiet -- sh -c 'exit 5'
checks=$((checks + 1))
[ -s "$tmp/err" ] && fail "--quiet printed: $(cat "$tmp/err")"

# A command that cannot start.
expect_status 1 "cannot run ffstream-no-such-command" "$FFCGROUP" --limit 32M -- ffstream-no-such-command

# 200 MiB touched under 32 MiB: OOM-killed, exit 128 + SIGKILL.
expect_status 137 "OOM-killed" "$FFCGROUP" --limit 32M --json "$tmp/oom.json" -- "$ALLOCATOR" --allocate 200
for field in '"oom_killed":[[:space:]]*true' '"signal":[[:space:]]*9' '"exit_status":[[:space:]]*null' \
    '"oom_kills":[[:space:]]*[1-9]'; do
    checks=$((checks + 1))
    grep -Eq -- "$field" "$tmp/oom.json" || fail "oom.json lacks $field: $(cat "$tmp/oom.json")"
done

test_summary test_ffcgroup
