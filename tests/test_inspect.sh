#!/bin/sh
# test_inspect: ffinspect on small real runs made here with fftrain.
#  - the run table lists every layer with its shape, parameters, bytes (against
#    the files), epochs, status and checksum; --json says the same;
#  - the file view shows every tensor; --verify passes on sound runs;
#  - --diff: ff-stream == ff-mem (exit 0), another seed differs (exit 1);
#  - a flipped byte, a truncated file and a missing layer make --verify exit 1
#    naming the file and the tensor or layer;
#  - safetensors and .npy exports have the right headers and sizes; with
#    python3 + numpy, their arrays are loaded and compared with the files'
#    statistics and with each other;
#  - tiled layers (format version 3): runs in 3 uneven tiles and in 8 verify,
#    --diff against the untiled run says identical, their exports are byte
#    for byte the untiled run's, the views show the tiling; a flipped byte in
#    a tile is named by tile, a truncated file by its expected size, and
#    --diff and the exports refuse them.
# Usage: test_inspect.sh PATH/TO/fftrain PATH/TO/ffinspect
set -u
FFTRAIN=$1
FFINSPECT=$2
. "$(dirname "$0")/lib.sh"
need_data

# expect_exit WANT NAME ARGS...: runs ffinspect, output in $tmp/out and $tmp/err
expect_exit() {
    want=$1
    name=$2
    shift 2
    checks=$((checks + 1))
    "$FFINSPECT" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "$name: ffinspect $* exited $rc, expected $want; stdout: $(cat "$tmp/out"); stderr: $(cat "$tmp/err")"
        return 1
    fi
    return 0
}

# has FILE NAME PATTERN...: every grep -E pattern matches a line of FILE
has() {
    file=$1
    name=$2
    shift 2
    for pattern in "$@"; do
        checks=$((checks + 1))
        if ! grep -qE -- "$pattern" "$file"; then
            fail "$name: no line matches '$pattern' in: $(cat "$file")"
            return 1
        fi
    done
    return 0
}

# count_of FILE PATTERN: lines matching
count_of() { grep -cE -- "$2" "$1"; }

# json_numbers FILE FIELD: the values of "FIELD": N in cJSON's output, one a line
json_numbers() { sed -n "s/.*\"$2\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" "$1"; }

FLAGS="--layers 3 --hidden 32 --epochs 1 --batch 200 --train-limit 1000 --test-limit 200 --data $data --quiet"
"$FFTRAIN" --mode ff-stream --run "$tmp/stream" $FLAGS || { echo "ff-stream run failed"; exit 1; }
"$FFTRAIN" --mode ff-mem --run "$tmp/mem" $FLAGS || { echo "ff-mem run failed"; exit 1; }
"$FFTRAIN" --mode ff-stream --run "$tmp/seed2" --seed 2 $FLAGS || { echo "seed 2 run failed"; exit 1; }

# ---- the run table ----
if expect_exit 0 "run table" "$tmp/stream"; then
    cp "$tmp/out" "$tmp/table"
    cat "$tmp/table"
    has "$tmp/table" "run table" "^mode +ff-stream, finished" "layers 3, hidden 32" "batch 200" \
        "symba_alpha 4" "head_lr 0.001" "negatives fixed" "seed 1" "threads 2" \
        "1000 training and 200 test samples" \
        "^ +0 +794 -> 32 +25440 +305280 +[0-9]+ +[0-9.]+x +1/1 +[0-9]+ +yes +trained +ok$" \
        "^ +1 +32 -> 32 +1056 +12672 +[0-9]+ +[0-9.]+x +1/1 +[0-9]+ +yes +trained +ok$" \
        "^ +2 +32 -> 32 +1056 +12672 +[0-9]+ +[0-9.]+x +1/1 +[0-9]+ +yes +trained +ok$" \
        "^disk +[0-9.]+ MiB: checkpoints [0-9.]+, caches [0-9.]+, other [0-9.]+$" \
        "^total +27552 +330624 " "MiB" && ok "run table: 3 layers, shapes, parameters, status, checksums"
    # Stored bytes: the file's size minus its preamble and header (the first
    # tensor's offset, from the file view's JSON).
    for k in 0 1 2; do
        checks=$((checks + 1))
        f="$tmp/stream/layers/00$k.ffl"
        "$FFINSPECT" --json "$f" >"$tmp/file.json"
        first=$(json_numbers "$tmp/file.json" offset | head -1)
        size=$(wc -c <"$f")
        stored=$(awk -v k=$k '$1 == k && $3 == "->" { print $7 }' "$tmp/table")
        if [ -n "$first" ] && [ "$stored" = $((size - first)) ]; then
            ok "layer $k: $stored stored bytes = $size - $first"
        else
            fail "layer $k: stored bytes '$stored', file $size bytes, payload from '$first'"
        fi
    done
fi

if expect_exit 0 "run --json" --json "$tmp/stream"; then
    cp "$tmp/out" "$tmp/run.json"
    checks=$((checks + 2))
    [ "$(count_of "$tmp/run.json" '"status":[[:space:]]*"trained"')" = 3 ] || fail "run --json: 3 trained layers"
    [ "$(count_of "$tmp/run.json" '"checksum":[[:space:]]*"ok"')" = 3 ] || fail "run --json: 3 checksums ok"
    has "$tmp/run.json" "run --json" '"mode":[[:space:]]*"ff-stream"' '"in":[[:space:]]*794' \
        '"parameters":[[:space:]]*25440' '"raw_bytes":[[:space:]]*305280' '"sound":[[:space:]]*true' \
        '"hidden":[[:space:]]*32' && ok "run --json"
    # The configuration is written by one function everywhere: the same
    # keys and the same spellings in run.json, result.json and ffinspect.
    for f in "$tmp/run.json" "$tmp/stream/run.json" "$tmp/stream/result.json"; do
        has "$f" "configuration in $(basename "$f")" '"seed":[[:space:]]*"1"' '"lr":[[:space:]]*0.03,' \
            '"symba_alpha":[[:space:]]*4,' '"negatives":[[:space:]]*"fixed"' '"head_lr":[[:space:]]*0.001,' \
            '"threshold":[[:space:]]*"fixed"' '"train_limit":[[:space:]]*1000,' \
            && ok "configuration in $(basename "$f"): every option, the seed as a string"
    done
fi

# ---- one file ----
if expect_exit 0 "file view" "$tmp/stream/layers/000.ffl"; then
    cp "$tmp/out" "$tmp/file"
    cat "$tmp/file"
    has "$tmp/file" "file view" "^layer +0: 794 -> 32" "^parameters +25440 " "checksums +ok \(6 tensors\)" \
        "^adam +step [0-9]+" "^training +complete: 1 of 1"
    for t in weight bias adam_m.weight adam_m.bias adam_v.weight adam_v.bias; do
        checks=$((checks + 1))
        n=$(grep -c "^$t " "$tmp/file")
        [ "$n" = 2 ] || fail "file view: tensor $t on $n lines, expected 2 (sizes, statistics)"
    done
    has "$tmp/file" "file view" "^weight +\[32, 794\] +zstd-shuffle +101632 " "^bias +\[32\] +zstd-shuffle +128 " &&
        ok "file view: header and 6 tensors"
fi
expect_exit 0 "file --json" --json "$tmp/stream/layers/001.ffl" && cp "$tmp/out" "$tmp/file1.json" &&
    has "$tmp/file1.json" "file --json" '"name":[[:space:]]*"adam_v.bias"' '"l2_norm":' '"zero_fraction":' \
        '"nan":[[:space:]]*0' '"inf":[[:space:]]*0' '"std":' && ok "file --json"

# ---- verify ----
expect_exit 0 "verify run" --verify "$tmp/stream" && has "$tmp/out" "verify run" "^sound: .*3 file\(s\), 18 tensor\(s\)" &&
    ok "verify run: $(cat "$tmp/out")"
expect_exit 0 "verify ff-mem run" --verify "$tmp/mem" && ok "verify ff-mem run"
expect_exit 0 "verify file" --verify "$tmp/stream/layers/002.ffl" && ok "verify file"
expect_exit 0 "verify --json" --verify --json "$tmp/stream" &&
    has "$tmp/out" "verify --json" '"sound":[[:space:]]*true' '"problems":[[:space:]]*\[\]' && ok "verify --json"

# ---- diff ----
expect_exit 0 "diff ff-stream ff-mem" --diff "$tmp/stream" "$tmp/mem" &&
    has "$tmp/out" "diff ff-stream ff-mem" "ff-mem run" "^result: identical \(3 layers, 18 tensors" &&
    ok "diff ff-stream vs ff-mem: $(tail -1 "$tmp/out")"
expect_exit 0 "diff --json" --diff --json "$tmp/stream" "$tmp/mem" &&
    has "$tmp/out" "diff --json" '"identical":[[:space:]]*true' '"differing_tensors":[[:space:]]*0' && ok "diff --json"
if expect_exit 1 "diff other seed" --diff "$tmp/stream" "$tmp/seed2"; then
    has "$tmp/out" "diff other seed" "^result: differ \(18 of 18 tensors, max abs diff [0-9]" \
        "weight .* differ: [0-9]+ of 25408 elements, max abs diff" && ok "diff other seed: $(tail -1 "$tmp/out")"
fi
expect_exit 1 "diff files" --diff "$tmp/stream/layers/001.ffl" "$tmp/seed2/layers/001.ffl" &&
    has "$tmp/out" "diff files" "^result: differ \(max abs diff" && ok "diff files differ"
expect_exit 0 "diff same file" --diff "$tmp/stream/layers/001.ffl" "$tmp/mem/layers/001.ffl" &&
    has "$tmp/out" "diff same file" "headers byte-identical" "^result: identical" && ok "diff identical files"

# ---- damage ----
# A flipped byte inside layer 1's weight (offset from the file's JSON).
cp -r "$tmp/stream" "$tmp/flipped"
offset=$(json_numbers "$tmp/file1.json" offset | head -1)
printf '\377' | dd of="$tmp/flipped/layers/001.ffl" bs=1 seek=$((offset + 100)) conv=notrunc 2>/dev/null
if expect_exit 1 "verify flipped" --verify "$tmp/flipped"; then
    has "$tmp/out" "verify flipped" "^BAD: .*flipped/layers/001.ffl: tensor weight: crc32 mismatch" "^NOT SOUND" &&
        ok "flipped byte: $(head -1 "$tmp/out")"
fi
expect_exit 1 "table flipped" "$tmp/flipped" &&
    has "$tmp/out" "table flipped" "^ +1 +32 -> 32 .*trained +BAD: tensor weight: crc32 mismatch" &&
    ok "table shows the damaged layer"
expect_exit 1 "file view flipped" "$tmp/flipped/layers/001.ffl" &&
    has "$tmp/out" "file view flipped" "^weight +BAD: tensor weight: crc32" "^checksums +BAD: 1 of 6" &&
    ok "file view shows the damaged tensor"
expect_exit 3 "diff flipped" --diff "$tmp/stream" "$tmp/flipped" &&
    has "$tmp/out" "diff flipped" "cannot compare: .*001.ffl: tensor weight" && ok "diff refuses the damaged layer"

# A flipped last byte (inside adam_v.bias), found by --verify of the file.
cp "$tmp/stream/layers/002.ffl" "$tmp/last.ffl"
size=$(wc -c <"$tmp/last.ffl")
printf '\377' | dd of="$tmp/last.ffl" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
expect_exit 1 "verify last byte" --verify "$tmp/last.ffl" &&
    has "$tmp/out" "verify last byte" "^BAD: .*last.ffl: tensor adam_v.bias: crc32 mismatch" && ok "last byte: $(head -1 "$tmp/out")"

# A truncated layer file.
cp -r "$tmp/stream" "$tmp/truncated"
truncate -s -10 "$tmp/truncated/layers/002.ffl"
expect_exit 1 "verify truncated" --verify --json "$tmp/truncated" &&
    has "$tmp/out" "verify truncated" '"file":[[:space:]]*".*truncated/layers/002.ffl"' '"tensor":[[:space:]]*"adam_v.bias"' \
        '"layer":[[:space:]]*2' '"message":.*truncated' '"sound":[[:space:]]*false' && ok "truncated file named in --json"
expect_exit 1 "verify truncated" --verify "$tmp/truncated" &&
    has "$tmp/out" "verify truncated" "^BAD: .*truncated/layers/002.ffl: tensor adam_v.bias: .*truncated" &&
    ok "truncated: $(head -1 "$tmp/out")"

# A missing layer.
cp -r "$tmp/stream" "$tmp/missing"
rm "$tmp/missing/layers/001.ffl"
expect_exit 1 "verify missing" --verify "$tmp/missing" &&
    has "$tmp/out" "verify missing" "^BAD: .*missing/layers/001.ffl: layer 1 is missing" && ok "missing: $(head -1 "$tmp/out")"
expect_exit 1 "table missing" "$tmp/missing" && has "$tmp/out" "table missing" "^ +1 +- .* missing " &&
    ok "table shows the missing layer"

# An interrupted run: layer 0 saved mid-epoch, the others not reached. Sound.
FFSTREAM_TEST_KILL=train:0:3:INT "$FFTRAIN" --mode ff-stream --run "$tmp/partial" $FLAGS 2>/dev/null
expect_exit 0 "table partial" "$tmp/partial" &&
    has "$tmp/out" "table partial" "^mode +ff-stream, not finished" \
        "^ +0 +794 -> 32 +25440 .* 0/1 +[0-9]+ +yes +in progress +ok$" "^ +1 +- .* pending " "^ +2 +- .* pending " &&
    ok "interrupted run: layer 0 in progress, layers 1 and 2 pending"
expect_exit 0 "verify partial" --verify "$tmp/partial" &&
    has "$tmp/out" "verify partial" "^note: 2 layer\(s\) pending" "^sound: .*1 file\(s\), 6 tensor\(s\)" &&
    ok "interrupted run verifies"
expect_exit 3 "diff partial" --diff "$tmp/partial" "$tmp/stream" &&
    has "$tmp/out" "diff partial" "^layer 1: cannot compare: .*partial/layers/001.ffl: cannot open" \
        "^result: 2 layer\(s\) cannot be compared; 6 of the 6 tensors compared differ" &&
    ok "diff of an interrupted run: $(tail -1 "$tmp/out")"

# ---- export ----
# safetensors: [N u64][N bytes of JSON, N % 8 == 0][data]; data = 4 bytes per parameter.
u64_at() { od -An -t u8 -j "$2" -N 8 "$1" | tr -d ' '; }
u16_at() { od -An -t u2 -j "$2" -N 2 "$1" | tr -d ' '; }
check_safetensors() {
    file=$1
    floats=$2
    name=$3
    checks=$((checks + 1))
    n=$(u64_at "$file" 0)
    size=$(wc -c <"$file")
    if [ $((n % 8)) -ne 0 ] || [ "$size" -ne $((8 + n + 4 * floats)) ]; then
        fail "$name: header $n bytes, file $size bytes, expected 8 + $n + 4 * $floats"
        return 1
    fi
    dd if="$file" bs=1 skip=8 count="$n" 2>/dev/null >"$tmp/st-header"
    checks=$((checks + 1))
    [ "$(head -c 1 "$tmp/st-header")" = "{" ] || { fail "$name: header does not start with {"; return 1; }
    return 0
}
params=$((25440 + 1056 + 1056))
expect_exit 0 "export safetensors" --export-safetensors "$tmp/model.safetensors" "$tmp/stream" &&
    check_safetensors "$tmp/model.safetensors" $params "safetensors" &&
    has "$tmp/st-header" "safetensors header" '"__metadata__":\{"format":"pt"' '"layers":"3"' \
        '"layers.0.weight":\{"dtype":"F32","shape":\[32,794\],"data_offsets":\[0,101632\]\}' \
        '"layers.0.bias":\{"dtype":"F32","shape":\[32\],"data_offsets":\[101632,101760\]\}' \
        '"layers.2.bias":\{"dtype":"F32","shape":\[32\],"data_offsets":\[110080,110208\]\}' &&
    ok "safetensors: $(cat "$tmp/out")"
expect_exit 0 "export with optimizer" --export-safetensors "$tmp/all.safetensors" --with-optimizer "$tmp/mem" &&
    check_safetensors "$tmp/all.safetensors" $((3 * params)) "safetensors with optimizer" &&
    has "$tmp/st-header" "safetensors optimizer header" '"layers.1.adam_v.weight":\{"dtype":"F32","shape":\[32,32\]' \
        '"layers.0.adam_step":"[0-9]+"' && ok "safetensors with Adam state: $(cat "$tmp/out")"
expect_exit 0 "export one file" --export-safetensors "$tmp/one.safetensors" "$tmp/stream/layers/002.ffl" &&
    check_safetensors "$tmp/one.safetensors" 1056 "one file" &&
    has "$tmp/st-header" "one file header" '"layers.2.weight":' && ok "one file exported as layer 2"
expect_exit 3 "export damaged" --export-safetensors "$tmp/bad.safetensors" "$tmp/flipped" &&
    has "$tmp/err" "export damaged" "001.ffl: tensor weight: crc32" && ok "export refuses a damaged file"
checks=$((checks + 1))
[ ! -e "$tmp/bad.safetensors" ] || fail "a failed export left $tmp/bad.safetensors"

# npy: magic, version 1.0, header length so the data start at a multiple of 64.
check_npy() {
    file=$1
    floats=$2
    shape=$3
    checks=$((checks + 1))
    magic=$(head -c 8 "$file" | od -An -t x1 | tr -d ' \n')
    len=$(u16_at "$file" 8)
    size=$(wc -c <"$file")
    if [ "$magic" != 934e554d50590100 ] || [ $(((10 + len) % 64)) -ne 0 ] ||
        [ "$size" -ne $((10 + len + 4 * floats)) ]; then
        fail "$file: magic $magic, header $len bytes, size $size for $floats floats"
        return 1
    fi
    checks=$((checks + 1))
    if ! head -c $((10 + len)) "$file" | grep -qF "{'descr': '<f4', 'fortran_order': False, 'shape': $shape, }"; then
        fail "$file: header $(head -c $((10 + len)) "$file")"
        return 1
    fi
    return 0
}
if expect_exit 0 "export npy" --export-npy "$tmp/npy" --with-optimizer "$tmp/stream"; then
    checks=$((checks + 1))
    [ "$(ls "$tmp/npy" | wc -l)" = 18 ] || fail "export npy: $(ls "$tmp/npy" | wc -l) files, expected 18"
    good=1
    for m in "" adam_m. adam_v.; do
        check_npy "$tmp/npy/layers.0.${m}weight.npy" 25408 "(32, 794)" || good=0
        check_npy "$tmp/npy/layers.0.${m}bias.npy" 32 "(32,)" || good=0
        check_npy "$tmp/npy/layers.2.${m}weight.npy" 1024 "(32, 32)" || good=0
    done
    [ $good = 1 ] && ok "npy: 18 files, headers and sizes"
fi

# Exports are all or nothing, never replace silently, never write through
# a planted link, and refuse a run with a damaged or missing layer.
cp "$tmp/model.safetensors" "$tmp/model2.safetensors"
cp -r "$tmp/npy" "$tmp/npy2"
expect_exit 3 "export over an existing file" --export-safetensors "$tmp/model2.safetensors" "$tmp/stream" &&
    has "$tmp/err" "export over an existing file" "model2.safetensors: exists; pass --force" &&
    ok "an existing export is not replaced without --force"
expect_exit 0 "export --force" --export-safetensors "$tmp/model2.safetensors" --force "$tmp/stream" &&
    ok "--force replaces it"
expect_exit 3 "npy over an existing dir" --export-npy "$tmp/npy2" "$tmp/stream" &&
    has "$tmp/err" "npy over an existing dir" "npy2: exists; pass --force" && ok "npy: refused without --force"
expect_exit 0 "npy --force" --export-npy "$tmp/npy2" --force "$tmp/stream" && checks=$((checks + 1)) &&
    { [ "$(ls "$tmp/npy2" | wc -l)" = 6 ] && ok "npy --force: the old 18 files replaced by 6" ||
        fail "npy --force left $(ls "$tmp/npy2" | wc -l) files"; }
expect_exit 3 "npy of a damaged run" --export-npy "$tmp/npy-bad" "$tmp/flipped" &&
    has "$tmp/err" "npy of a damaged run" "001.ffl: tensor weight: crc32" && ok "npy refuses a damaged run"
checks=$((checks + 1))
if [ -e "$tmp/npy-bad" ] || ls "$tmp" | grep -q 'npy-bad.tmp'; then
    fail "a failed npy export left files: $(ls -d "$tmp"/npy-bad*)"
fi
cp -r "$tmp/stream" "$tmp/holed"
rm "$tmp/holed/layers/001.ffl"
expect_exit 3 "export of a run missing a layer" --export-safetensors "$tmp/holed.safetensors" "$tmp/holed" &&
    has "$tmp/err" "export of a run missing a layer" "layer 1 is missing: nothing exported" &&
    ok "a run missing a layer is an error, not a shorter export"
echo precious >"$tmp/victim"
ln -s "$tmp/victim" "$tmp/planted.safetensors"
expect_exit 0 "export over a planted link" --export-safetensors "$tmp/planted.safetensors" --force "$tmp/stream"
checks=$((checks + 1))
[ "$(cat "$tmp/victim")" = precious ] && [ ! -L "$tmp/planted.safetensors" ] &&
    ok "a planted link is replaced, its target untouched" || fail "the export wrote through a planted link"

# ---- tiled layers ----
# The same small run whole, in 3 tiles of 70 units (the last 60) and in 8 of
# 25: the tensors are the same numbers (bit for bit on the machines measured;
# elsewhere within 1e-4 of each tensor's scale).
subset="$(dirname "$0")/../data/fashion-mnist-subset"
TFLAGS="--mode ff-stream --data $subset --layers 2 --hidden 200 --batch 200 --epochs 2 --eval goodness --mem-budget none --quiet"
"$FFTRAIN" $TFLAGS --run "$tmp/whole" || { echo "untiled run failed"; exit 1; }
"$FFTRAIN" $TFLAGS --run "$tmp/t70" --tile-units 70 || { echo "run in tiles of 70 failed"; exit 1; }
"$FFTRAIN" $TFLAGS --run "$tmp/t25" --tile-units 25 || { echo "run in tiles of 25 failed"; exit 1; }

for r in t70 t25; do
    expect_exit 0 "verify $r" --verify "$tmp/$r" &&
        has "$tmp/out" "verify $r" "^sound: .*2 file\(s\), 12 tensor\(s\)" && ok "verify $r: $(cat "$tmp/out")"
done

# --diff: identical, or (another machine's arithmetic) close in every tensor.
bitwise=1 # every pair identical
same70=0  # whole and t70 identical
for pair in "whole t70" "whole t25" "t70 t25" "t25 whole"; do
    set -- $pair
    "$FFINSPECT" --diff --json "$tmp/$1" "$tmp/$2" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    checks=$((checks + 1))
    worst=$(json_numbers "$tmp/out" max_scaled_diff | sort -g | tail -1)
    if [ $rc = 0 ] && grep -qE '"identical":[[:space:]]*true' "$tmp/out"; then
        [ "$pair" = "whole t70" ] && same70=1
        ok "diff $1 $2: identical"
    elif [ $rc = 1 ] && [ -n "$worst" ] && awk -v w="$worst" 'BEGIN { exit !(w <= 1e-4) }'; then
        bitwise=0
        ok "diff $1 $2: not bit for bit, max scaled diff $worst"
    else
        bitwise=0
        fail "diff $1 $2: exit $rc, max scaled diff '$worst': $(cat "$tmp/out" "$tmp/err")"
    fi
done
expect_exit $((1 - same70)) "diff whole t70 files" --diff "$tmp/whole/layers/000.ffl" "$tmp/t70/layers/000.ffl" &&
    has "$tmp/out" "diff whole t70 files" "^file: headers differ$" "^  adam_v.bias +\[200\] " && ok "diff of a whole and a tiled file"

# Exports read a tiled layer as the tensors it makes up: the same bytes.
if [ $bitwise = 1 ]; then
    for opt in "" --with-optimizer; do
        for r in whole t70 t25; do
            expect_exit 0 "npy $r $opt" --export-npy "$tmp/npy-$r$opt" $opt "$tmp/$r"
        done
        checks=$((checks + 1))
        n=$(ls "$tmp/npy-whole$opt" | wc -l)
        if [ "$n" = $([ -n "$opt" ] && echo 12 || echo 4) ] && diff -r "$tmp/npy-whole$opt" "$tmp/npy-t70$opt" >/dev/null &&
            diff -r "$tmp/npy-whole$opt" "$tmp/npy-t25$opt" >/dev/null; then
            ok "npy ${opt:-without optimizer}: $n files byte-identical whole, in 3 tiles and in 8"
        else
            fail "npy ${opt:-without optimizer}: $n files; $(diff -r "$tmp/npy-whole$opt" "$tmp/npy-t70$opt" 2>&1 | head -3)"
        fi
    done
    expect_exit 0 "safetensors whole" --export-safetensors "$tmp/whole.safetensors" --with-optimizer "$tmp/whole" &&
        expect_exit 0 "safetensors t70" --export-safetensors "$tmp/t70.safetensors" --with-optimizer "$tmp/t70" &&
        checks=$((checks + 1)) && if cmp -s "$tmp/whole.safetensors" "$tmp/t70.safetensors"; then
            ok "safetensors with optimizer: byte-identical whole and tiled"
        else
            fail "safetensors of the tiled run differs from the whole run's"
        fi
else
    echo "skip: the tiled run is not bit for bit the untiled one here: exports not compared byte for byte"
fi

# The views say how a layer is tiled.
if expect_exit 0 "tiled file view" "$tmp/t70/layers/000.ffl"; then
    cp "$tmp/out" "$tmp/tiled-file"
    has "$tmp/tiled-file" "tiled file view" "format version 3" \
        "^tiles +3 tiles of 70 output units \(the last 60\): frames of 3 x [0-9]+ bytes from byte [0-9]+" \
        "^layer +0: 794 -> 200" "^checksums +ok \(6 tensors\)" "^weight +\[200, 794\] +raw +635200 +635200 +1.00x +- +-$" &&
        ok "tiled file view: 3 tiles of 70, the last 60"
fi
expect_exit 0 "tiled file view 25" "$tmp/t25/layers/001.ffl" &&
    has "$tmp/out" "tiled file view 25" "^tiles +8 tiles of 25 output units: " && ok "tiled file view: 8 tiles of 25"
checks=$((checks + 1))
grep -q "^tiles " "$tmp/file" && fail "the untiled file view has a tiles line"
expect_exit 0 "tiled file --json" --json "$tmp/t70/layers/001.ffl" && cp "$tmp/out" "$tmp/t70-1.json" &&
    has "$tmp/t70-1.json" "tiled file --json" '"version":[[:space:]]*3' '"tiles":[[:space:]]*\{' \
        '"units":[[:space:]]*70' '"count":[[:space:]]*3' '"last_units":[[:space:]]*60' '"offset":[[:space:]]*null' &&
    ok "tiled file --json: tiles {units 70, count 3, last_units 60}"
expect_exit 0 "untiled file --json" --json "$tmp/whole/layers/001.ffl" &&
    has "$tmp/out" "untiled file --json" '"tiles":[[:space:]]*null' && ok "untiled file --json: tiles null"
expect_exit 0 "tiled run table" "$tmp/t70" &&
    has "$tmp/out" "tiled run table" "^ +0 +794 -> 200 +159000 +1908000 .* 2/2 +[0-9]+ +yes +trained +ok$" \
        "^tiled layers " "^  layer 0: 3 tiles of 70 output units \(the last 60\)$" \
        "^  layer 1: 3 tiles of 70 output units \(the last 60\)$" && ok "tiled run table: both layers in 3 tiles"
expect_exit 0 "untiled run table" "$tmp/whole" && checks=$((checks + 1)) &&
    { grep -q "^tiled layers" "$tmp/out" && fail "the untiled run's table lists tiled layers" || ok "untiled run table: no tiles"; }
expect_exit 0 "tiled run --json" --json "$tmp/t25" && checks=$((checks + 1)) &&
    if [ "$(count_of "$tmp/out" '"units":[[:space:]]*25')" = 2 ] && [ "$(count_of "$tmp/out" '"count":[[:space:]]*8')" = 2 ]; then
        ok "tiled run --json: 2 layers in 8 tiles of 25"
    else
        fail "tiled run --json: $(grep -E '"(units|count)"' "$tmp/out")"
    fi

# A flipped byte inside tile 1's parameters of layer 1. Where the tiles
# start comes from the file's own header (its length at bytes 12..15),
# checked against ffinspect's figures.
f="$tmp/t70/layers/001.ffl"
hb=$(od -An -t u4 -j 12 -N 4 "$f" | tr -d ' ')
dd if="$f" bs=1 skip=24 count="$hb" 2>/dev/null >"$tmp/t70-header"
data_offset=$(sed -n 's/.*"data_offset":[[:space:]]*\([0-9]*\).*/\1/p' "$tmp/t70-header")
region=$(sed -n 's/.*"region_bytes":[[:space:]]*\([0-9]*\).*/\1/p' "$tmp/t70-header")
checks=$((checks + 1))
if [ -n "$data_offset" ] && [ "$data_offset" = $((24 + hb)) ] &&
    [ "$data_offset" = "$(json_numbers "$tmp/t70-1.json" data_offset)" ] &&
    [ $((3 * region)) = "$(json_numbers "$tmp/t70-1.json" frame_bytes)" ]; then
    ok "tiles start at byte $data_offset, frames of 3 x $region bytes"
else
    fail "data_offset '$data_offset' region '$region', header $hb bytes, ffinspect: $(grep -E 'data_offset|frame_bytes' "$tmp/t70-1.json")"
fi
cp -r "$tmp/t70" "$tmp/t70-bad"
size=$(wc -c <"$f")
printf '\377' | dd of="$tmp/t70-bad/layers/001.ffl" bs=1 seek=$((data_offset + 3 * region + 100)) conv=notrunc 2>/dev/null
expect_exit 1 "verify damaged tile" --verify "$tmp/t70-bad" &&
    has "$tmp/out" "verify damaged tile" "^BAD: .*t70-bad/layers/001.ffl: tensor weight: tile 1 of 3: checksum mismatch" \
        "^NOT SOUND" && ok "damaged tile: $(head -1 "$tmp/out")"
expect_exit 1 "verify damaged tile file" --verify --json "$tmp/t70-bad/layers/001.ffl" &&
    has "$tmp/out" "verify damaged tile file" '"tensor":[[:space:]]*"weight"' '"message":.*tile 1 of 3' && ok "damaged tile named in --json"
expect_exit 1 "view damaged tile" "$tmp/t70-bad/layers/001.ffl" &&
    has "$tmp/out" "view damaged tile" "^weight +BAD: tensor weight: tile 1 of 3: checksum mismatch" && ok "file view names the damaged tile"
expect_exit 1 "table damaged tile" "$tmp/t70-bad" &&
    has "$tmp/out" "table damaged tile" "^ +1 +200 -> 200 .*trained +BAD: tensor weight: tile 1 of 3" && ok "table names the damaged tile"
expect_exit 3 "diff damaged tile" --diff "$tmp/whole" "$tmp/t70-bad" &&
    has "$tmp/out" "diff damaged tile" "^layer 0: headers differ" "^layer 1: cannot compare: .*t70-bad/layers/001.ffl: tensor weight: tile 1 of 3" &&
    ok "diff refuses the damaged tile (B)"
# A's tile 1 is compared before its checksum fails: nothing of it may count.
expect_exit 3 "diff damaged tile, runs" --diff "$tmp/t70-bad" "$tmp/t70" &&
    has "$tmp/out" "diff damaged tile, runs" "^layer 1: cannot compare: .*t70-bad/layers/001.ffl: tensor weight: tile 1 of 3" \
        "^result: 1 layer\(s\) cannot be compared; 6 of the 12 tensors compared differ \(max abs diff 0\)$" &&
    ok "diff of runs: $(tail -1 "$tmp/out")"
expect_exit 3 "diff damaged tile A" --diff "$tmp/t70-bad/layers/001.ffl" "$tmp/whole/layers/001.ffl" &&
    has "$tmp/err" "diff damaged tile A" "t70-bad/layers/001.ffl: tensor weight: tile 1 of 3: checksum mismatch" &&
    ok "diff refuses the damaged tile (A): $(cat "$tmp/err")"
expect_exit 3 "npy of a damaged tile" --export-npy "$tmp/npy-t70-bad" "$tmp/t70-bad" &&
    has "$tmp/err" "npy of a damaged tile" "001.ffl: tensor weight: tile 1 of 3" && ok "npy refuses the damaged tile"
expect_exit 3 "safetensors of a damaged tile" --export-safetensors "$tmp/t70-bad.safetensors" "$tmp/t70-bad" &&
    has "$tmp/err" "safetensors of a damaged tile" "001.ffl: tensor weight: tile 1 of 3" && ok "safetensors refuses the damaged tile"
checks=$((checks + 1))
if [ -e "$tmp/t70-bad.safetensors" ] || ls "$tmp" | grep -q 'npy-t70-bad'; then
    fail "a failed export of a damaged tile left files: $(ls -d "$tmp"/*t70-bad*)"
fi

# A truncated tiled file: refused before any tile is read, naming its size.
cp -r "$tmp/t70" "$tmp/t70-short"
truncate -s -4096 "$tmp/t70-short/layers/001.ffl"
expect_exit 1 "verify truncated tiled" --verify "$tmp/t70-short" &&
    has "$tmp/out" "verify truncated tiled" "^BAD: .*t70-short/layers/001.ffl: $((size - 4096)) bytes, expected $size for 3 tiles" &&
    ok "truncated tiled file: $(head -1 "$tmp/out")"
expect_exit 3 "view truncated tiled" "$tmp/t70-short/layers/001.ffl" &&
    has "$tmp/err" "view truncated tiled" "expected $size for 3 tiles" && ok "file view refuses the truncated file"
expect_exit 3 "diff truncated tiled" --diff "$tmp/t70-short" "$tmp/whole" &&
    has "$tmp/out" "diff truncated tiled" "^layer 1: cannot compare: .*expected $size" && ok "diff refuses the truncated file"
expect_exit 3 "npy of a truncated tiled file" --export-npy "$tmp/npy-t70-short" --with-optimizer "$tmp/t70-short" &&
    has "$tmp/err" "npy of a truncated tiled file" "layer 1 is unreadable: .*expected $size" && ok "npy refuses the truncated file"

# ---- arguments ----
expect_exit 2 "unknown flag" --bogus "$tmp/stream" && has "$tmp/err" "unknown flag" "unknown flag '--bogus'" && ok "unknown flag"
expect_exit 2 "diff one path" --diff "$tmp/stream" && ok "--diff needs two paths"
expect_exit 2 "diff run and file" --diff "$tmp/stream" "$tmp/last.ffl" && ok "--diff of a run and a file"
expect_exit 2 "two actions" --verify --diff "$tmp/stream" "$tmp/mem" && ok "two actions refused"
expect_exit 3 "no such path" "$tmp/nowhere" && has "$tmp/err" "no such path" "nowhere: cannot open" && ok "missing path"
expect_exit 0 "help" --help && has "$tmp/out" "help" "--export-safetensors OUT" "Exit status" && ok "--help"

# ---- numpy (optional) ----
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    checks=$((checks + 1))
    "$FFINSPECT" --json "$tmp/stream/layers/000.ffl" >"$tmp/file0.json"
    if /usr/bin/python3 - "$tmp/npy" "$tmp/file0.json" "$tmp/model.safetensors" "$tmp/all.safetensors" <<'EOF'; then
import json, struct, sys
import numpy as np
npy, stats_path, model, everything = sys.argv[1:5]
stats = json.load(open(stats_path))
names = ["weight", "bias", "adam_m.weight", "adam_m.bias", "adam_v.weight", "adam_v.bias"]
for t in stats["tensors"]:
    a = np.load(f"{npy}/layers.0.{t['name']}.npy")
    assert a.dtype == np.float32 and list(a.shape) == t["shape"], (t["name"], a.dtype, a.shape)
    d = a.astype(np.float64)
    assert d.min() == t["min"] and d.max() == t["max"], t["name"]
    for key, value in (("mean", d.mean()), ("std", d.std()), ("l2_norm", np.sqrt((d * d).sum()))):
        assert abs(value - t[key]) <= 1e-9 * max(abs(value), 1e-30), (t["name"], key, value, t[key])
    assert int((a == 0).sum()) == t["zeros"] and not np.isnan(a).any() and np.isfinite(a).all()

def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(e["shape"])
    return header, out

header, tensors = read_safetensors(model)
assert header["__metadata__"]["format"] == "pt" and len(tensors) == 6
for k in range(3):
    for name in names[:2]:
        a = np.load(f"{npy}/layers.{k}.{name}.npy")
        assert np.array_equal(tensors[f"layers.{k}.{name}"], a), (k, name)
header, tensors = read_safetensors(everything)  # the ff-mem run: equal to ff-stream's
assert len(tensors) == 18
for k in range(3):
    for name in names:
        assert tensors[f"layers.{k}.{name}"].tobytes() == np.load(f"{npy}/layers.{k}.{name}.npy").tobytes(), (k, name)
print("numpy: npy statistics and safetensors arrays agree with ffinspect")
EOF
        ok "numpy checks"
    else
        fail "numpy checks"
    fi
else
    echo "skip: python3 with numpy not available"
fi

test_summary test_inspect
