#!/bin/sh
# tools/test.sh: installs what is missing, builds, and runs every test twice:
# in an optimised test build (build-test/) and in the address+undefined
# sanitizer build (build-sanitize/), both with the test hooks compiled in
# (kill points and injected I/O faults; release builds have none). Ends with
# one line "N passed, N failed, N skipped".
# Then the fuzz targets of the parsers (IDX, layer file, run.json, cache
# header, layers.json) run for FUZZ_SECONDS each (default 30) in a clang build with
# libFuzzer and the sanitizers (build-fuzz/); an input that makes a target
# fail is kept under tests/fuzz/regressions/ and counts as a failure.
#   --fast        optimised test build only, no fuzzing
#   --sanitize    sanitizer build and fuzzing only
set -u
cd "$(dirname "$0")/.." || exit 1
. tools/setup.sh

builds="build-test build-sanitize"
fuzz=1
case "${1:-}" in
    --fast) builds="build-test" fuzz=0 ;;
    --sanitize) builds="build-sanitize" ;;
    "") ;;
    *) echo "usage: tools/test.sh [--fast|--sanitize]" >&2; exit 2 ;;
esac

[ $fuzz = 1 ] && FFSTREAM_PACKAGES="$FFSTREAM_PACKAGES clang libclang-rt-14-dev"
ffstream_install
# The dataset package is installed above: a missing dataset is a failure here.
export FFSTREAM_REQUIRE_DATA=1

passed=0 failed=0 skipped=0
for b in $builds; do
    if [ "$b" = build-sanitize ]; then
        ffstream_build "$b" -Dtest_hooks=true -Db_sanitize=address,undefined -Dbuildtype=debugoptimized
        # A small quarantine keeps freed memory from inflating the memory
        # figures that the cgroup tests compare against a limit.
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:quarantine_size_mb=16
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        export FFSTREAM_SANITIZED=1
    else
        ffstream_build "$b" -Dtest_hooks=true
    fi
    echo "== tests in $b"
    meson test -C "$b" --print-errorlogs --num-processes 2 >"$b.test.log" 2>&1
    cat "$b.test.log" | grep -E "^ *[0-9]+/[0-9]+ " || true
    # meson's summary lines: "Ok: N", "Fail: N", "Skipped: N", "Timeout: N"...
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$b.test.log")
    fl=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$b.test.log")
    ux=$(sed -n 's/^Unexpected Pass: *\([0-9]*\).*/\1/p' "$b.test.log")
    to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$b.test.log")
    sk=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$b.test.log")
    if [ -z "$ok" ]; then
        cat "$b.test.log"
        echo "test.sh: meson test in $b printed no summary" >&2
        fl=1
    fi
    passed=$((passed + ${ok:-0}))
    failed=$((failed + ${fl:-0} + ${ux:-0} + ${to:-0}))
    skipped=$((skipped + ${sk:-0}))
    if [ "${fl:-0}" != 0 ] || [ "${to:-0}" != 0 ]; then
        grep -B2 -A40 -E "FAIL|TIMEOUT" "$b.test.log" | tail -150
    fi
    grep -E "SKIP" "$b.test.log" || true
done
if [ $fuzz = 1 ]; then
    echo "== fuzzing in build-fuzz (clang, libFuzzer, address+undefined), ${FUZZ_SECONDS:-30} s a target"
    (
        CC=clang
        export CC
        ffstream_build build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
            -Dbuildtype=debugoptimized
    ) || exit 1
    for t in idx layerfile run actcache layerstats; do
        work=$(mktemp -d)
        cp tests/fuzz/corpus/$t/* "$work/"
        regressions=tests/fuzz/regressions/$t
        if (cd "$work" && ASAN_OPTIONS=detect_leaks=1 "$OLDPWD/build-fuzz/tests/fuzz/fuzz_$t" \
            -max_total_time="${FUZZ_SECONDS:-30}" -rss_limit_mb=2048 -timeout=20 \
            -print_final_stats=1 . >"$OLDPWD/build-fuzz/fuzz_$t.log" 2>&1); then
            runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build-fuzz/fuzz_$t.log")
            echo "fuzz $t: OK, $runs inputs in ${FUZZ_SECONDS:-30} s"
            passed=$((passed + 1))
        else
            mkdir -p "$regressions"
            for f in "$work"/crash-* "$work"/leak-* "$work"/oom-* "$work"/timeout-*; do
                [ -f "$f" ] && cp "$f" "$regressions/" && echo "fuzz $t: kept $regressions/$(basename "$f")"
            done
            tail -40 "build-fuzz/fuzz_$t.log"
            echo "fuzz $t: FAIL (see build-fuzz/fuzz_$t.log)"
            failed=$((failed + 1))
        fi
        rm -rf "$work"
    done
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
