# tests/lib.sh: what the shell tests share (sourced). Each test counts its
# checks, reports every failure on stderr, and ends with test_summary, whose
# status is the test's: 0 when nothing failed.
#
# FFSTREAM_DATA is the dataset directory (meson passes its dataset_dir option
# unless the caller set the variable); FFSTREAM_TEST_HOOKS=1 says the build
# has the test hooks (kill points, injected faults).

failures=0
checks=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ffstream-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
data=${FFSTREAM_DATA:-/usr/share/datasets/fashion-mnist}

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
check() { checks=$((checks + 1)); } # counts one check; the caller says ok or fail

# have_data: whether the real dataset is at $data.
have_data() { [ -f "$data/train-labels-idx1-ubyte.gz" ] || [ -f "$data/train-labels-idx1-ubyte" ]; }

# need_data: skip the whole test (77) when the dataset is missing, or fail
# when FFSTREAM_REQUIRE_DATA=1 (tools/test.sh installs the data).
need_data() {
    have_data && return 0
    echo "dataset not found at $data: apt-get install dataset-fashion-mnist (or set FFSTREAM_DATA; data/README.md)"
    [ "${FFSTREAM_REQUIRE_DATA:-0}" = 1 ] && exit 1
    exit 77
}

# need_hooks: skip (77) in a build without the test hooks.
need_hooks() {
    [ "${FFSTREAM_TEST_HOOKS:-0}" = 1 ] && return 0
    echo "this build has no test hooks (configure with -Dtest_hooks=true; tools/test.sh does)"
    exit 77
}

# expect_status WANT FRAGMENT CMD ARGS...: the command exits WANT and its
# stderr holds FRAGMENT (empty: anything). Output in $tmp/out, $tmp/err.
expect_status() {
    want_rc=$1
    want=$2
    shift 2
    check
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want_rc" ]; then
        fail "$* exited $rc, expected $want_rc: $(cat "$tmp/err")"
        return 1
    fi
    if [ -n "$want" ] && ! grep -qF -- "$want" "$tmp/err"; then
        fail "$*: stderr lacks '$want': $(cat "$tmp/err")"
        return 1
    fi
    ok "$* -> $(head -c 300 "$tmp/err" | head -2)"
    return 0
}

# json_field FILE NAME: the first number or string value of "NAME" in FILE.
json_field() {
    sed -n "s/.*\"$2\":[[:space:]]*\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}[[:space:]]*$/\1/p" "$1" | head -1
}

# peak_field RESULT.json: the field that holds a run's peak memory: the
# resident set, except under the address sanitizer, whose shadow memory and
# quarantine are not the program's (its resident set moves by tens of MiB
# with them): there, the program's own accounting.
# peak_limit BUDGET_MIB RESULT.json: what that field may reach under a
# --mem-budget: the budget, or for the accounting the budget less the 32 MiB
# the planner leaves the process itself (code, libraries, stacks).
peak_field() {
    if grep -q '"build_type":[[:space:]]*"[^"]*address' "$1"; then
        echo accounted_peak_bytes
    else
        echo peak_rss_bytes
    fi
}
peak_limit() {
    if [ "$(peak_field "$2")" = accounted_peak_bytes ]; then
        echo $((($1 - 32) * 1048576))
    else
        echo $(($1 * 1048576))
    fi
}

# test_summary NAME: the closing line and the exit status.
test_summary() {
    echo "$1: $checks checks, $failures failed"
    [ "$failures" -eq 0 ]
}
