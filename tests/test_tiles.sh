#!/bin/sh
# test_tiles: layers trained in tiles of output units (tiles.h, tilefile.h).
#  - one tile (--tile-units >= --hidden) is the untiled run, file for file;
#  - 2, 3, 7 and 8 tiles (3, 7 and 8 do not divide the layer) agree with the
#    untiled run on real data: the same accuracy, weights within 1e-4 of the
#    largest weight (ffinspect --diff --json) under the original recipe;
#    under --recipe best the same accuracy within 0.3 points;
#  - a run killed inside a tiled step (between two tiles' writes) resumes at
#    the tile boundary to the files of an uninterrupted run; so do a kill
#    between steps, a stop (SIGINT) and a damaged pending file (the step is
#    started again);
#  - a symlink planted where the next state is written is refused, and what
#    it points to is untouched;
#  - --mem-budget too small for a whole layer picks tiles, and the run's
#    peak RSS stays within the budget;
#  - tile I/O falls back from O_DIRECT where the filesystem refuses it
#    (simulated by a test hook), to the same files;
#  - a batch in pieces: each tile's gradient summed over them, against the
#    untiled run in the same pieces; a budget below one batch's inputs
#    picks pieces and tiles;
#  - tiles are refused outside ff-stream.
# Usage: test_tiles.sh PATH/TO/fftrain PATH/TO/ffinspect
set -u
FFTRAIN=$1
FFINSPECT=$2
. "$(dirname "$0")/lib.sh"
need_data

NET="--mode ff-stream --layers 3 --hidden 300 --batch 400 --epochs 2 --train-limit 2000
    --test-limit 500 --eval goodness --threads 2 --mem-budget none --data $data --quiet"

# train NAME FLAGS...: a run in $tmp/NAME with its result in $tmp/NAME.json.
train() {
    name=$1
    shift
    check
    if "$FFTRAIN" $NET --run "$tmp/$name" --json "$tmp/$name.json" "$@" >"$tmp/out" 2>"$tmp/err"; then
        return 0
    fi
    fail "$name ($*): exit $?: $(cat "$tmp/err")"
    return 1
}

# same_files A B WHAT: every layer file of runs A and B is byte-identical.
same_files() {
    check
    for f in "$tmp/$1"/layers/*.ffl; do
        if ! cmp -s "$f" "$tmp/$2/layers/$(basename "$f")"; then
            fail "$3: $(basename "$f") differs between $1 and $2"
            return 1
        fi
    done
    ok "$3: every layer file of $2 is byte-identical to $1's"
}

# agree A B WHAT: the same accuracy, parameters within 1e-4 (scaled).
agree() {
    check
    acc_a=$(json_field "$tmp/$1.json" test_accuracy)
    acc_b=$(json_field "$tmp/$2.json" test_accuracy)
    "$FFINSPECT" --diff --json "$tmp/$1" "$tmp/$2" >"$tmp/diff.json" 2>"$tmp/err"
    scaled=$(json_field "$tmp/diff.json" params_max_scaled_diff)
    identical=$(json_field "$tmp/diff.json" identical)
    if [ -n "$acc_a" ] && [ "$acc_a" = "$acc_b" ] &&
        awk -v s="${scaled:-1}" 'BEGIN { exit !(s <= 1e-4) }'; then
        ok "$3: accuracy $acc_b = $acc_a, parameters max scaled difference $scaled (identical: $identical)"
    else
        fail "$3: accuracy $acc_b against $acc_a, parameters max scaled difference '${scaled}': $(cat "$tmp/err")"
    fi
}

# ---- tilings against the untiled run ----
train whole
train one --tile-units 300 && same_files whole one "one tile (--tile-units 300)"
for units in 150 100 43 38; do
    tiles=$(((300 + units - 1) / units))
    train "u$units" --tile-units $units && agree whole "u$units" "$tiles tiles of $units units"
done
check
if grep -q '"units":[[:space:]]*100' "$tmp/u100.json" && grep -q '"kind":[[:space:]]*"update"' "$tmp/u100.json"; then
    ok "the result records the tiling and every stream over the tiles"
else
    fail "u100.json lacks tiles.units or the update streams"
fi
# Under --recipe best the SymBa loss (alpha 128) turns rounding differences
# into weight differences of about 2%, as summing a batch in pieces does:
# the accuracy is compared (within 0.3 points).
train best --recipe best --epochs 1
if train best3 --recipe best --epochs 1 --tile-units 100; then
    check
    a=$(json_field "$tmp/best.json" test_accuracy)
    b=$(json_field "$tmp/best3.json" test_accuracy)
    if awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.003) }'; then
        ok "--recipe best in 3 tiles: accuracy $b against $a untiled"
    else
        fail "--recipe best in 3 tiles: accuracy $b against $a untiled"
    fi
fi

# ---- refusals ----
expect_status 2 "only ff-stream" "$FFTRAIN" --mode ff-mem --layers 2 --hidden 300 --tile-units 100 \
    --data "$data"

# ---- a batch in pieces: each tile's gradient summed over them ----
train pieces --piece-images 100
train pieces3 --piece-images 100 --tile-units 100 && agree pieces pieces3 "2 pieces x 3 tiles"

# ---- a budget that needs tiles ----
BIG="--mode ff-stream --layers 2 --hidden 2048 --batch 400 --epochs 1 --train-limit 2000
    --test-limit 500 --eval goodness --threads 2 --data $data --quiet"
expect_status 0 "" "$FFTRAIN" $BIG --run "$tmp/budget" --mem-budget 100M --plan
check
if grep -q "^tiles " "$tmp/out"; then
    ok "--mem-budget 100M: $(grep '^tiles ' "$tmp/out")"
else
    fail "--mem-budget 100M chose no tiles: $(cat "$tmp/out")"
fi
expect_status 0 "" "$FFTRAIN" $BIG --run "$tmp/budget" --mem-budget 100M --json "$tmp/budget.json"
check
what=$(peak_field "$tmp/budget.json")
used=$(json_field "$tmp/budget.json" $what)
if [ -n "$used" ] && [ "$used" -le "$(peak_limit 100 "$tmp/budget.json")" ]; then
    ok "--mem-budget 100M: $what $used within the budget"
else
    fail "--mem-budget 100M: $what '$used'"
fi

# A budget below even one batch's inputs beside a tile: the batch in
# pieces too, read again for every tile.
WIDE="--mode ff-stream --layers 2 --hidden 1024 --batch 400 --epochs 1 --train-limit 1000
    --test-limit 100 --eval goodness --threads 2 --data $data --quiet"
expect_status 0 "" "$FFTRAIN" $WIDE --run "$tmp/wide" --mem-budget 38M --plan
check
if grep -q "^tiles " "$tmp/out" && ! grep -q "^chunks  *200 images per training chunk" "$tmp/out"; then
    ok "--mem-budget 38M: $(grep '^tiles ' "$tmp/out"); $(grep '^chunks ' "$tmp/out")"
else
    fail "--mem-budget 38M: $(cat "$tmp/out")"
fi
expect_status 0 "" "$FFTRAIN" $WIDE --run "$tmp/wide" --mem-budget 38M --json "$tmp/wide.json"
pieces=$(json_field "$tmp/wide.json" piece_images)
units=$(json_field "$tmp/wide.json" tile_units)
expect_status 0 "" "$FFTRAIN" $WIDE --run "$tmp/wide-whole" --mem-budget none \
    --piece-images "$pieces" --json "$tmp/wide-whole.json"
agree wide-whole wide "--mem-budget 38M ($pieces images a piece, tiles of $units) against whole layers"

# ---- kills and stops inside tiled layers ----
if [ "${FFSTREAM_TEST_HOOKS:-0}" = 1 ]; then
    # 3 tiles a step, 5 steps an epoch: tile 8 of layer 2 is the second
    # tile of its third step.
    for point in tile:1:8 tile:0:1 train:1:3 train:2:1:INT pieces:tile:1:5; do
        name=kill-$(echo "$point" | tr ':' '-')
        flags="--tile-units 100" base=u100
        case $point in pieces:*) point=${point#pieces:} flags="$flags --piece-images 100" base=pieces3 ;; esac
        check
        FFSTREAM_TEST_KILL=$point "$FFTRAIN" $NET --run "$tmp/$name" $flags >/dev/null 2>&1
        rc=$?
        if [ "$rc" -eq 0 ]; then
            fail "$point: the run was not stopped"
            continue
        fi
        if train "$name" $flags --resume; then
            same_files $base "$name" "killed at $point ($flags; exit $rc), resumed"
        fi
    done
    check
    if grep -q '"first_tile":[[:space:]]*[12]' "$tmp/kill-tile-1-8.json"; then
        ok "the resumed step kept the tiles written before the kill"
    else
        fail "kill-tile-1-8.json: no update stream started past tile 0"
    fi
    # A damaged pending file: its tiles fail their checksums, the step is
    # taken again from its first tile.
    FFSTREAM_TEST_KILL=tile:1:8 "$FFTRAIN" $NET --run "$tmp/damaged" --tile-units 100 >/dev/null 2>&1
    pending="$tmp/damaged/layers/001.ffl.pending"
    check
    if [ -f "$pending" ]; then
        size=$(wc -c <"$pending")
        printf 'XXXX' | dd of="$pending" bs=1 seek=$((size / 3)) conv=notrunc 2>/dev/null
        ok "damaged the pending file at byte $((size / 3))"
        train damaged --tile-units 100 --resume && same_files u100 damaged "a damaged pending file, resumed"
    else
        fail "no pending file after a kill inside a step"
    fi
    # A planted symlink where the next state goes.
    FFSTREAM_TEST_KILL=train:1:1 "$FFTRAIN" $NET --run "$tmp/planted" --tile-units 100 >/dev/null 2>&1
    echo precious >"$tmp/target"
    ln -s "$tmp/target" "$tmp/planted/layers/001.ffl.pending"
    expect_status 1 "refusing" "$FFTRAIN" $NET --run "$tmp/planted" --tile-units 100 --resume
    check
    if [ "$(cat "$tmp/target")" = precious ]; then ok "the link's target is untouched"
    else fail "the link's target was written through"; fi
    rm -f "$tmp/planted/layers/001.ffl.pending"
    train planted --tile-units 100 --resume && same_files u100 planted "resumed once the link is gone"
else
    echo "skip: kills and stops (this build has no test hooks)"
fi

# ---- O_DIRECT's fallback ----
check
if grep -q '"io":[[:space:]]*"O_DIRECT"' "$tmp/u100.json"; then ok "tile I/O with O_DIRECT here"
else echo "note: $tmp is on a filesystem without O_DIRECT: the tiles were read buffered"; fi
if [ "${FFSTREAM_TEST_HOOKS:-0}" = 1 ]; then
    check
    if FFSTREAM_TEST_NO_DIRECT=1 "$FFTRAIN" $NET --run "$tmp/buffered" --tile-units 100 \
        --json "$tmp/buffered.json" >/dev/null 2>"$tmp/err" &&
        grep -q '"io":[[:space:]]*"buffered"' "$tmp/buffered.json"; then
        ok "O_DIRECT refused (EINVAL): tile I/O buffered"
        same_files u100 buffered "buffered tile I/O"
    else
        fail "O_DIRECT refused: $(cat "$tmp/err"); $(grep -o '"io":[[:space:]]*"[^"]*"' "$tmp/buffered.json" 2>/dev/null)"
    fi
fi

test_summary tiles
