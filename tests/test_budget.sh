#!/bin/sh
# test_budget: planning a run against memory and disk.
#  - --plan prints the memory model by category and the disk by kind, and
#    writes them as JSON, without creating the run;
#  - the plan against the measurement: the program's memory accounting and
#    the checkpoints on disk agree with it;
#  - a budget ff-mem or bp do not fit is refused before any work, naming
#    the smallest budget and --mode ff-stream; one ff-stream cannot fit,
#    naming its minimum; between, ff-stream picks smaller chunks, and its
#    peak RSS stays within the budget from the minimum up to 4x it;
#  - auto: the limit of the cgroup the process runs in (where one can be
#    made);
#  - --keep-optimizer last: finished layers lose their Adam moments, a
#    killed run resumes to the same files, ffinspect shows which layers
#    carry moments;
#  - a disk too small for the plan (a 1 MiB tmpfs, where a mount is
#    allowed) is refused before anything is written.
# Usage: test_budget.sh PATH/TO/fftrain PATH/TO/ffinspect PATH/TO/ffcgroup
set -u
FFTRAIN=$1
FFINSPECT=$2
FFCGROUP=$3
. "$(dirname "$0")/lib.sh"
need_data

NET="--layers 2 --hidden 512 --batch 2000 --epochs 1 --lr 0.01 --train-limit 2000 --test-limit 500 --threads 2 --data $data --quiet"

# ---- the plan ----
expect_status 0 "" "$FFTRAIN" --mode ff-stream --run "$tmp/planned" $NET --plan --json "$tmp/plan.json"
check
if grep -q "memory model" "$tmp/out" && grep -q "checkpoints" "$tmp/out" && [ ! -e "$tmp/planned" ]; then
    ok "--plan: $(grep 'memory model' "$tmp/out")"
else
    fail "--plan printed: $(cat "$tmp/out"); run directory created: $(ls -d "$tmp/planned" 2>/dev/null)"
fi
for field in '"weights":' '"gradients":' '"optimizer":' '"activations":' '"io_buffers":' \
    '"dataset":' '"head":' '"peak_total":' '"caches":' '"checkpoints":' '"free":'; do
    check
    grep -q "$field" "$tmp/plan.json" || fail "plan JSON lacks $field"
done

# ---- plan against the measurement ----
# Raw checkpoints: their sizes are exact.
"$FFTRAIN" --mode ff-stream --run "$tmp/measured" $NET --checkpoint-codec raw \
    --plan --json "$tmp/plan-raw.json" >/dev/null
"$FFTRAIN" --mode ff-stream --run "$tmp/measured" $NET --checkpoint-codec raw \
    --json "$tmp/measured.json" || fail "measured run"
model=$(sed -n '/"memory":/,/}/s/.*"peak_total":[[:space:]]*\([0-9]*\).*/\1/p' "$tmp/plan-raw.json" | head -1)
accounted=$(sed -n '/"memory":/,/}/s/.*"peak_total":[[:space:]]*\([0-9]*\).*/\1/p' "$tmp/measured.json" | head -1)
other=$(sed -n '/"memory":/,/}/s/.*"other":[[:space:]]*\([0-9]*\).*/\1/p' "$tmp/measured.json" | head -1)
check
if [ -n "$model" ] && [ -n "$accounted" ] && [ "$accounted" -ge "$model" ] &&
    [ "$accounted" -le $((model + other)) ]; then
    ok "memory: plan $model bytes, accounted $accounted (bookkeeping $other)"
else
    fail "memory: plan '$model', accounted '$accounted', other '$other'"
fi
planned=$(sed -n '/"disk":/,/}/s/.*"final_checkpoints":[[:space:]]*\([0-9]*\).*/\1/p' "$tmp/plan-raw.json" | head -1)
written=0
for f in "$tmp/measured/layers/"*.ffl; do written=$((written + $(wc -c <"$f"))); done
check
if [ -n "$planned" ] && [ "$written" -eq "$planned" ]; then
    ok "disk: the plan's $planned bytes of checkpoints are the bytes written"
else
    fail "disk: plan '$planned' bytes of checkpoints, written $written"
fi

# ---- budgets ----
expect_status 1 "--mem-budget: ff-mem needs" "$FFTRAIN" --mode ff-mem $NET --mem-budget 40M
check
grep -q "use --mode ff-stream, which can run this network in" "$tmp/err" &&
    ok "ff-mem's refusal names ff-stream's minimum" || fail "ff-mem refusal: $(cat "$tmp/err")"
expect_status 1 "--mem-budget: bp needs" "$FFTRAIN" --mode bp $NET --mem-budget 20M
expect_status 1 "is below what this ff-stream run needs with its smallest chunks" \
    "$FFTRAIN" --mode ff-stream --run "$tmp/tiny" $NET --mem-budget 20M
minimum=$(sed -n 's/.*smallest chunks: \([0-9.]*\) MiB.*/\1/p' "$tmp/err" | cut -d. -f1)
check
[ -n "$minimum" ] && [ ! -e "$tmp/tiny" ] && ok "the minimum is ${minimum} MiB; nothing was created" ||
    fail "no minimum in: $(cat "$tmp/err")"
minimum=$((minimum + 1))
for factor in 1 2 4; do
    budget=$((minimum * factor))
    dir="$tmp/budget-$factor"
    check
    if "$FFTRAIN" --mode ff-stream --run "$dir" $NET --mem-budget ${budget}M --json "$dir.json"; then
        what=$(peak_field "$dir.json")
        rss=$(json_field "$dir.json" "$what")
        piece=$(json_field "$dir.json" piece_images)
        if [ "$rss" -le "$(peak_limit "$budget" "$dir.json")" ]; then
            ok "budget ${budget} MiB: $what $((rss / 1048576)) MiB, training chunks of $piece images (0: whole batches)"
        else
            fail "budget ${budget} MiB: $what $rss bytes is over it"
        fi
    else
        fail "budget ${budget} MiB: the run failed"
    fi
done

# ---- a batch trained in pieces is the same step ----
# The gradient of a batch is summed piece by piece and applied once, so only
# the order of float additions differs from the whole batch.
PIECE="--layers 2 --hidden 128 --batch 1000 --epochs 1 --lr 0.01 --train-limit 3000 --test-limit 200 --threads 2 --data $data --quiet"
"$FFTRAIN" --mode ff-stream --run "$tmp/whole" $PIECE || fail "whole-batch run"
"$FFTRAIN" --mode ff-stream --run "$tmp/pieces" $PIECE --piece-images 100 || fail "pieced run"
"$FFINSPECT" --diff --json "$tmp/whole" "$tmp/pieces" >"$tmp/diff.json"
maxdiff=$(json_field "$tmp/diff.json" max_abs_diff)
check
if [ -n "$maxdiff" ] && awk -v d="$maxdiff" 'BEGIN { exit !(d < 1e-5) }'; then
    ok "5 pieces of 100 images against whole batches: max abs diff $maxdiff"
else
    fail "pieced training differs from whole batches by '$maxdiff'"
fi
"$FFTRAIN" --mode ff-mem --run "$tmp/pieces-mem" $PIECE --piece-images 100 >/dev/null || fail "pieced ff-mem run"
check
same=1
for i in 000 001; do cmp -s "$tmp/pieces/layers/$i.ffl" "$tmp/pieces-mem/layers/$i.ffl" || same=0; done
[ $same = 1 ] && ok "pieced: ff-stream and ff-mem write identical layer files" || fail "pieced ff-stream and ff-mem differ"

# ---- the cgroup's limit as the budget ----
if "$FFCGROUP" --limit 64M --quiet -- true 2>/dev/null; then
    check
    if "$FFCGROUP" --limit 300M --quiet -- "$FFTRAIN" --mode ff-mem $NET --plan >"$tmp/out" 2>"$tmp/err" &&
        grep -q "memory budget   300.0 MiB (the limit of cgroup" "$tmp/out"; then
        ok "auto budget: $(grep 'memory budget' "$tmp/out")"
    else
        fail "auto budget: $(cat "$tmp/out" "$tmp/err")"
    fi
else
    echo "skip: no writable memory cgroup here for the auto budget"
fi

# ---- --keep-optimizer last ----
SMALL="--layers 3 --hidden 32 --epochs 2 --batch 200 --lr 0.01 --train-limit 1000 --test-limit 200 --threads 2 --data $data --quiet --keep-optimizer last"
"$FFTRAIN" --mode ff-stream --run "$tmp/last" $SMALL || fail "keep-optimizer last run"
"$FFINSPECT" "$tmp/last" >"$tmp/table"
check
if grep -Eq "^ +0 .* no +trained" "$tmp/table" && grep -Eq "^ +1 .* no +trained" "$tmp/table" &&
    grep -Eq "^ +2 .* yes +trained" "$tmp/table"; then
    ok "ffinspect: layers 0 and 1 without Adam moments, layer 2 with"
else
    fail "moments column: $(cat "$tmp/table")"
fi
"$FFTRAIN" --mode ff-stream --run "$tmp/all" $SMALL --keep-optimizer all || fail "keep-optimizer all run"
check
[ "$(du -sk "$tmp/last/layers" | cut -f1)" -lt "$(du -sk "$tmp/all/layers" | cut -f1)" ] &&
    ok "last: $(du -sk "$tmp/last/layers" | cut -f1) KiB of checkpoints against $(du -sk "$tmp/all/layers" | cut -f1) KiB" ||
    fail "keep-optimizer last did not save disk"
if [ "${FFSTREAM_TEST_HOOKS:-0}" = 1 ]; then
    FFSTREAM_TEST_KILL=advanced:1:0 "$FFTRAIN" --mode ff-stream --run "$tmp/last-killed" $SMALL 2>/dev/null
    "$FFTRAIN" --mode ff-stream --run "$tmp/last-killed" --resume $SMALL || fail "resume with keep-optimizer last"
    check
    same=1
    for i in 000 001 002; do cmp -s "$tmp/last/layers/$i.ffl" "$tmp/last-killed/layers/$i.ffl" || same=0; done
    [ $same = 1 ] && ok "killed after layer 1 and resumed: identical files" || fail "resumed files differ"
fi

# ---- a disk too small ----
small="$tmp/small"
mkdir -p "$small"
if mount -t tmpfs -o size=1m tmpfs "$small" 2>/dev/null; then
    expect_status 1 "MiB free; --keep-optimizer last saves two thirds of the checkpoints; --ignore-disk-space starts anyway" "$FFTRAIN" --mode ff-stream --run "$small/run" $NET
    check
    grep -q "$small/run: the run needs .* more disk" "$tmp/err" && [ ! -e "$small/run" ] &&
        ok "disk refusal before anything is written" || fail "disk refusal: $(cat "$tmp/err")"
    umount "$small"
else
    echo "skip: cannot mount a tmpfs here for the disk-space refusal"
fi

test_summary test_budget
