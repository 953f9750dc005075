#!/bin/sh
# test_cli: fftrain's command line. Impossible flags fail before any work with
# exit 2 and a message naming the flag; --help works; --json writes every
# documented field. Usage: test_cli.sh PATH/TO/fftrain
set -u
FFTRAIN=$1
. "$(dirname "$0")/lib.sh"

# expect_error "message fragment" args...: exit status 2 and the fragment on stderr
expect_error() {
    want=$1
    shift
    checks=$((checks + 1))
    "$FFTRAIN" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne 2 ]; then fail "fftrain $* exited $rc, expected 2"; return; fi
    if ! grep -qF -- "$want" "$tmp/err"; then
        fail "fftrain $*: stderr lacks '$want': $(cat "$tmp/err")"
        return
    fi
    echo "ok: fftrain $* -> $(cat "$tmp/err")"
}

expect_error "--layers: 0 is out of range" --layers 0
expect_error "--lr: -0.1 is out of range" --lr -0.1
expect_error "--lr: 0 is out of range" --lr 0
expect_error "--mode: 'ff-magic', expected ff-mem, bp, ff-stream or ff-recurrent" --mode ff-magic
expect_error "--batch: 101 is odd" --batch 101
expect_error "need 3000 training images per step, but only 100" --batch 6000 --train-limit 100
expect_error "--hidden: 'abc' is not a whole number" --hidden abc
expect_error "--epochs: missing value" --epochs
expect_error "unknown flag '--bogus'" --bogus 1
expect_error "--label: 'sideways'" --label sideways
expect_error "--threads: 0 is out of range" --threads 0
expect_error "--run: ff-recurrent keeps no per-layer checkpoints" --mode ff-recurrent --run "$tmp/r"

checks=$((checks + 1))
if "$FFTRAIN" --help | grep -q -- "--mode MODE"; then echo "ok: --help"; else fail "--help"; fi

# A missing dataset directory is an error naming the directory (exit 1).
checks=$((checks + 1))
"$FFTRAIN" --data "$tmp/nowhere" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "$tmp/nowhere: no train-images" "$tmp/err"; then
    echo "ok: missing data -> $(cat "$tmp/err")"
else
    fail "missing data: exit $rc, $(cat "$tmp/err")"
fi

# Batch larger than the data, found only after loading.
if have_data; then
    checks=$((checks + 1))
    "$FFTRAIN" --mode bp --batch 70000 --data "$data" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq 1 ] && grep -q "only 60000 are loaded" "$tmp/err"; then
        echo "ok: batch > data -> $(cat "$tmp/err")"
    else
        fail "batch > data: exit $rc, $(cat "$tmp/err")"
    fi
    for mode in ff-mem bp ff-recurrent; do
        checks=$((checks + 1))
        if ! "$FFTRAIN" --mode $mode --layers 2 --hidden 64 --batch 200 --epochs 1 \
            --train-limit 1000 --test-limit 200 --data "$data" --quiet --json "$tmp/$mode.json"; then
            fail "$mode run failed"
            continue
        fi
        for field in '"mode":' '"layers":' '"hidden":' '"epochs":' '"batch":' '"lr":' '"theta":' \
            '"seed":' '"train_samples":' '"test_samples":' '"test_accuracy":' '"train_seconds":' \
            '"eval_seconds":' '"peak_rss_bytes":' '"per_layer":' '"memory":' '"weights":' \
            '"optimizer":' '"activations":' '"io_buffers":' '"other":' '"run_info":' '"commit":' \
            '"build_type":' '"blas_threads":' '"kernel":' '"started":' '"finished":' \
            '"load_average_1m_start":' '"load_average_1m_end":'; do
            if ! grep -q "$field" "$tmp/$mode.json"; then fail "$mode JSON lacks $field"; fi
        done
        grep -q "\"mode\":.*\"$mode\"" "$tmp/$mode.json" || fail "$mode JSON has the wrong mode"
        # The source commit (or "unknown" outside git) and a load average.
        commit=$(json_field "$tmp/$mode.json" commit)
        echo "$commit" | grep -Eq '^([0-9a-f]{40}(-dirty)?|unknown)$' || fail "$mode JSON: commit '$commit'"
        json_field "$tmp/$mode.json" load_average_1m_end | grep -Eq '^[0-9.]+$' ||
            fail "$mode JSON: load_average_1m_end is not a number"
        if [ "$mode" = ff-mem ]; then
            # Where the time went: each phase's seconds and matrix-product work.
            flat=$(tr -d ' \t\n' <"$tmp/$mode.json")
            for phase in step next_layer_pass evaluation; do
                g=$(echo "$flat" | sed -n "s/.*\"$phase\":{\"seconds\":[0-9.e+-]*,\"gflop\":\([0-9.e+-]*\),.*/\1/p")
                awk -v g="$g" 'BEGIN { exit !(g + 0 > 0) }' || fail "$mode JSON: phase $phase gflop '$g'"
            done
        fi
        if [ "$mode" = ff-recurrent ]; then
            # Per-layer FF figures: the first layer reads 784 pixels + 64 units.
            for field in '"goodness_pos":' '"goodness_neg":' '"seconds":' '"in":[[:space:]]*848'; do
                grep -q "$field" "$tmp/$mode.json" || fail "$mode JSON lacks $field"
            done
        fi
        echo "ok: $mode --json"
    done
else
    echo "dataset not found at $data: runs skipped"
    [ "${FFSTREAM_REQUIRE_DATA:-0}" = 1 ] && fail "dataset required"
fi

test_summary test_cli
