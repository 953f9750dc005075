#!/bin/sh
# test_stream: ff-stream end to end on real Fashion-MNIST subsets.
#  - ff-stream and ff-mem write byte-identical layer files and the same accuracy;
#  - the io_uring and pread backends give identical bytes;
#  - a run killed (SIGKILL) at many points, or stopped by SIGINT, resumes to
#    the uninterrupted run's exact files;
#  - --fused-pass: the same, with kills and a stop in a last epoch;
#  - resuming with other flags or data is refused; a full disk (RLIMIT_FSIZE)
#    fails cleanly, keeps what was written, and the run resumes afterwards.
# Usage: test_stream.sh PATH/TO/fftrain PATH/TO/ffinspect
set -u
FFTRAIN=$1
FFINSPECT=${2:-$(dirname "$FFTRAIN")/ffinspect}
. "$(dirname "$0")/lib.sh"
need_data
need_hooks

# Three layers so that evaluation skips one and scores two; hidden wider than
# the 794 inputs so later caches are larger than the first (disk-full test).
FLAGS="--layers 3 --hidden 96 --epochs 2 --batch 200 --lr 0.01 --train-limit 2000 --test-limit 300 --threads 2 --data $data --quiet"

accuracy() { sed -n 's/.*"test_accuracy":[[:space:]]*\([0-9.e+-]*\).*/\1/p' "$1/result.json"; }
weights() { sed -n 's/.*"weights_fnv1a64":[[:space:]]*"\([0-9a-f]*\)".*/\1/p' "$1/result.json"; }

# same_layers A B what: every layer file byte-identical, same accuracy
same_layers() {
    checks=$((checks + 1))
    for i in 000 001 002; do
        if ! cmp -s "$1/layers/$i.ffl" "$2/layers/$i.ffl"; then
            fail "$3: layers/$i.ffl differs between $1 and $2"
            return
        fi
    done
    a=$(accuracy "$1")
    b=$(accuracy "$2")
    if [ -z "$a" ] || [ "$a" != "$b" ]; then fail "$3: accuracy '$a' vs '$b'"; return; fi
    a=$(weights "$1")
    b=$(weights "$2")
    if [ -z "$a" ] || [ "$a" != "$b" ]; then fail "$3: weights hash '$a' vs '$b'"; return; fi
    ok "$3: identical layer files, accuracy $(accuracy "$1"), weights $a"
}

# Reference runs.
"$FFTRAIN" --mode ff-stream --run "$tmp/ref" $FLAGS || fail "ff-stream reference run"
"$FFTRAIN" --mode ff-mem --run "$tmp/mem" $FLAGS || fail "ff-mem run"
same_layers "$tmp/ref" "$tmp/mem" "ff-stream == ff-mem"
checks=$((checks + 1))
left=$(ls "$tmp/ref/cache" | grep -v '^scores-003.f32$' || true)
[ -z "$left" ] && ok "caches removed after use" || fail "caches left behind: $left"
checks=$((checks + 1))
grep -q '"finished":[[:space:]]*true' "$tmp/ref/run.json" && ok "run.json finished" || fail "run.json not finished"

# Both I/O backends.
for io in uring pread; do
    if "$FFTRAIN" --mode ff-stream --run "$tmp/io-$io" --io $io $FLAGS 2>"$tmp/io-$io.err"; then
        grep -q "\"backend\":[[:space:]]*\"$io\"" "$tmp/io-$io/result.json" || fail "--io $io not used"
        same_layers "$tmp/ref" "$tmp/io-$io" "--io $io"
    elif [ $io = uring ] && grep -q "io_uring unavailable" "$tmp/io-$io.err"; then
        echo "skip: io_uring unavailable here: $(cat "$tmp/io-$io.err")"
    else
        fail "--io $io: $(cat "$tmp/io-$io.err")"
    fi
done

# kill_resume NAME SPEC...: SIGKILL at each point in turn, resume after each.
kill_resume() {
    name=$1
    shift
    dir="$tmp/kill-$name${REF:+-fused}"
    first=1
    for spec in "$@"; do
        if [ $first = 1 ]; then
            FFSTREAM_TEST_KILL=$spec "$FFTRAIN" --mode ff-stream --run "$dir" $FLAGS 2>/dev/null
        else
            FFSTREAM_TEST_KILL=$spec "$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS 2>/dev/null
        fi
        rc=$?
        first=0
        checks=$((checks + 1))
        if [ $rc -ne 137 ]; then fail "kill at $spec: exit $rc, expected 137 (SIGKILL)"; return; fi
    done
    if ! "$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS 2>"$dir.err"; then
        fail "resume after $*: $(cat "$dir.err")"
        return
    fi
    same_layers "${REF:-$tmp/ref}" "$dir" "killed at $* then resumed"
}

kill_resume input input:0:3
kill_resume train-first train:0:4
kill_resume train-later train:1:13
kill_resume layer-saved saved:1:0
kill_resume cache-pass cache:0:4
kill_resume between advanced:0:0
kill_resume eval-last eval:2:1
kill_resume finished-no-result advanced:2:0
kill_resume twice train:1:5 eval:1:2
kill_resume thrice train:0:7 train:0:3 cache:1:2

# --fused-pass: the last epoch of each layer writes the next layer's rows.
# ff-mem and ff-stream agree; layer 1 is the unfused run's, the later ones
# are not; kills in the last epoch, after the rows are durable and after
# the layer is saved resume to the same files; a stop in the last epoch
# saves nothing of it and resumes to the same files too.
UNFUSED=$FLAGS
FLAGS="$FLAGS --fused-pass"
REF="$tmp/fused"
"$FFTRAIN" --mode ff-stream --run "$REF" $FLAGS || fail "ff-stream --fused-pass run"
"$FFTRAIN" --mode ff-mem --run "$tmp/fused-mem" $FLAGS || fail "ff-mem --fused-pass run"
same_layers "$REF" "$tmp/fused-mem" "--fused-pass: ff-stream == ff-mem"
check
if ! "$FFINSPECT" --diff "$tmp/ref/layers/000.ffl" "$REF/layers/000.ffl" >"$tmp/diff0" ||
    "$FFINSPECT" --diff "$tmp/ref/layers/001.ffl" "$REF/layers/001.ffl" >"$tmp/diff1"; then
    fail "--fused-pass: layer 1 should equal the unfused run's and layer 2 differ"
else
    ok "--fused-pass: layer 1 as unfused, layer 2 trained on other rows ($(tail -1 "$tmp/diff1"))"
fi
check
pass_s=$(tr -d ' \t\n' <"$REF/result.json" | grep -o '"next_layer_pass":{"seconds":[0-9.e+-]*' |
    cut -d: -f3)
[ "$pass_s" = 0 ] && ok "--fused-pass: no separate pass ran" ||
    fail "--fused-pass: a pass ran ('$pass_s' s)"
kill_resume last-epoch train:0:25
kill_resume rows-durable fused:0:0
kill_resume trained-saved saved:0:0
kill_resume later-layer train:1:31 eval:1:1
dir="$tmp/sigint-fused"
FFSTREAM_TEST_KILL=train:1:25:INT "$FFTRAIN" --mode ff-stream --run "$dir" $FLAGS 2>"$dir.err"
rc=$?
check
if [ $rc -eq 130 ]; then
    "$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS || fail "resume after SIGINT (fused)"
    same_layers "$REF" "$dir" "--fused-pass: SIGINT in the last epoch then resumed"
else
    fail "--fused-pass: SIGINT: exit $rc, $(cat "$dir.err")"
fi
dir="$tmp/fused-lost"
FFSTREAM_TEST_KILL=saved:0:0 "$FFTRAIN" --mode ff-stream --run "$dir" $FLAGS 2>/dev/null
rm -f "$dir/cache/train-001.cache"
expect_status 1 "cannot make them again" "$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS
expect_status 2 "--fused-pass: not with --tile-units" \
    "$FFTRAIN" --mode ff-stream --run "$tmp/fused-tiles" $FLAGS --tile-units 32
expect_status 2 "--fused-pass: only ff-mem and ff-stream" \
    "$FFTRAIN" --mode bp $FLAGS
FLAGS=$UNFUSED
unset REF

# SIGINT: finishes the step, saves mid-epoch, exits 130 and says how to resume.
dir="$tmp/sigint"
FFSTREAM_TEST_KILL=train:1:7:INT "$FFTRAIN" --mode ff-stream --run "$dir" $FLAGS 2>"$dir.err"
rc=$?
checks=$((checks + 1))
if [ $rc -eq 130 ] && grep -q "fftrain --resume --run $dir" "$dir.err"; then
    ok "SIGINT: exit 130, $(head -1 "$dir.err")"
    "$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS || fail "resume after SIGINT"
    same_layers "$tmp/ref" "$dir" "SIGINT then resumed"
else
    fail "SIGINT: exit $rc, $(cat "$dir.err")"
fi

# A real external SIGKILL at an arbitrary moment.
dir="$tmp/external"
"$FFTRAIN" --mode ff-stream --run "$dir" $FLAGS 2>/dev/null &
pid=$!
sleep 0.25
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
if grep -q '"finished":[[:space:]]*true' "$dir/run.json" 2>/dev/null; then
    echo "note: the run finished before the external kill"
elif [ -f "$dir/run.json" ]; then
    echo "note: killed after $(ls "$dir/layers" | wc -l) checkpoint(s)"
    "$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS || fail "resume after external kill"
else
    echo "note: killed before run.json was written: starting again"
    "$FFTRAIN" --mode ff-stream --run "$dir" $FLAGS || fail "new run after external kill"
fi
same_layers "$tmp/ref" "$dir" "external SIGKILL then resumed"

# expect_refusal WHAT FRAGMENT ARGS...: exit 1 and the fragment on stderr
expect_refusal() {
    what=$1
    want=$2
    shift 2
    checks=$((checks + 1))
    "$FFTRAIN" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 1 ] || ! grep -qF -- "$want" "$tmp/err"; then
        fail "$what: exit $rc, stderr: $(cat "$tmp/err")"
    else
        ok "$what: $(head -1 "$tmp/err")"
    fi
}
dir="$tmp/refuse"
FFSTREAM_TEST_KILL=train:0:2 "$FFTRAIN" --mode ff-stream --run "$dir" $FLAGS 2>/dev/null
expect_refusal "resume with another --lr" "--lr was 0.01" --mode ff-stream --run "$dir" --resume $FLAGS --lr 0.02
expect_refusal "resume with another --seed" "--seed was 1 in this run, now 7" --mode ff-stream --run "$dir" --resume $FLAGS --seed 7
mkdir -p "$tmp/otherdata"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz; do ln -s "$data/$f" "$tmp/otherdata/$f"; done
ln -s "$data/train-images-idx3-ubyte.gz" "$tmp/otherdata/t10k-images-idx3-ubyte.gz"
ln -s "$data/train-labels-idx1-ubyte.gz" "$tmp/otherdata/t10k-labels-idx1-ubyte.gz"
expect_refusal "resume with other data" "the data differ" --mode ff-stream --run "$dir" --resume $FLAGS --data "$tmp/otherdata"
expect_refusal "a second run in the same directory" "already holds a run" --mode ff-stream --run "$dir" $FLAGS
expect_refusal "resume of a finished run" "the run is finished" --mode ff-stream --run "$tmp/ref" --resume $FLAGS
expect_refusal "ff-mem over an existing run" "already holds a run (ff-stream)" --mode ff-mem --run "$dir" $FLAGS
# Killed while loading the data, before run.json existed: --resume starts anew.
checks=$((checks + 1))
if "$FFTRAIN" --mode ff-stream --run "$tmp/none" --resume $FLAGS 2>"$tmp/none.err" \
    && grep -q "held no run.json" "$tmp/none.err"; then
    ok "resume without run.json: $(cat "$tmp/none.err")"
    same_layers "$tmp/ref" "$tmp/none" "resume without run.json"
else
    fail "resume without run.json: $(cat "$tmp/none.err")"
fi
"$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS || fail "resume after refusals"
same_layers "$tmp/ref" "$dir" "refusals left the run intact"

# Everything that can be checked before the work is: a finished layer's
# checkpoint missing, a --json that is a directory, hostile files in the
# run directory (a FIFO, a planted link), an edited checkpoint or cache.
dir="$tmp/early"
FFSTREAM_TEST_KILL=advanced:1:0 "$FFTRAIN" --mode ff-stream --run "$dir" $FLAGS 2>/dev/null
cp "$dir/layers/000.ffl" "$tmp/000.ffl.saved"
rm "$dir/layers/000.ffl"
t0=$(date +%s)
expect_refusal "resume without a finished layer's checkpoint" \
    "layer 0 is trained according to run.json, but its checkpoint cannot be read" \
    --mode ff-stream --run "$dir" --resume $FLAGS
check
[ -f "$dir/cache/train-002.cache" ] && [ $(($(date +%s) - t0)) -lt 20 ] &&
    ok "refused before any work: the caches are untouched" || fail "work was done before the refusal"
cp "$tmp/000.ffl.saved" "$dir/layers/000.ffl"
mkdir -p "$tmp/adir"
expect_status 2 "--json: $tmp/adir: is a directory" "$FFTRAIN" --mode ff-stream --run "$tmp/jsondir" \
    --json "$tmp/adir" $FLAGS
check
[ ! -e "$tmp/jsondir" ] && ok "--json checked before the run started" || fail "a run started despite a bad --json"
# An edited Adam step: the header checksum names the file.
cp "$dir/layers/001.ffl" "$tmp/001.ffl.saved"
sed -i 's/"step":\([0-9]*\)/"step":9\1/' "$dir/layers/001.ffl"
expect_refusal "resume from an edited checkpoint" "001.ffl: header checksum mismatch" \
    --mode ff-stream --run "$dir" --resume $FLAGS
cp "$tmp/001.ffl.saved" "$dir/layers/001.ffl"
# A flipped byte inside a chunk of a cache: its checksum names the chunk.
cp "$dir/cache/train-002.cache" "$tmp/cache.saved"
printf '\377' | dd of="$dir/cache/train-002.cache" bs=1 seek=9000 conv=notrunc 2>/dev/null
expect_refusal "resume with a damaged cache" "train-002.cache: chunk 0: checksum mismatch" \
    --mode ff-stream --run "$dir" --resume $FLAGS
cp "$tmp/cache.saved" "$dir/cache/train-002.cache"
# A FIFO in place of run.json: refused at once, not a hang.
mv "$dir/run.json" "$tmp/run.json.saved"
mkfifo "$dir/run.json"
t0=$(date +%s)
timeout 30 "$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS >"$tmp/out" 2>"$tmp/err"
rc=$?
check
[ $rc -eq 1 ] && grep -q "run.json: is a FIFO, expected a regular file" "$tmp/err" &&
    ok "FIFO run.json: $(cat "$tmp/err")" || fail "FIFO run.json: exit $rc, $(cat "$tmp/err")"
rm "$dir/run.json"
mv "$tmp/run.json.saved" "$dir/run.json"
"$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS || fail "resume after the hostile files"
same_layers "$tmp/ref" "$dir" "hostile files refused, then resumed"
# A link planted where a new run creates its first cache: refused, its
# target untouched.
mkdir -p "$tmp/planted/cache" "$tmp/planted/layers"
echo precious >"$tmp/victim"
ln -s "$tmp/victim" "$tmp/planted/cache/train-000.cache"
expect_refusal "a planted link at a cache" "train-000.cache: is a symbolic link; refusing to write there" \
    --mode ff-stream --run "$tmp/planted" $FLAGS
check
[ "$(cat "$tmp/victim")" = precious ] && ok "the link's target is untouched" || fail "wrote through a planted link"

# A full disk: stop after layer 0, then resume under RLIMIT_FSIZE: layer 1's
# checkpoint (~110 KB) fits under the limit (512 KB or 1 MB, as the shell
# counts ulimit blocks) but layer 2's training cache (1.5 MB) does not.
dir="$tmp/full"
FFSTREAM_TEST_KILL=advanced:0:0 "$FFTRAIN" --mode ff-stream --run "$dir" $FLAGS 2>/dev/null
( ulimit -f 1000 && exec "$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS ) 2>"$dir.err"
rc=$?
checks=$((checks + 1))
if [ $rc -eq 1 ] && grep -q "File too large" "$dir.err"; then
    ok "full disk: $(head -1 "$dir.err")"
else
    fail "full disk: exit $rc, $(cat "$dir.err")"
fi
checks=$((checks + 1))
if grep -q '"cache_layer":[[:space:]]*1' "$dir/run.json" && [ -f "$dir/layers/001.ffl" ]; then
    ok "run.json and layer 1's checkpoint intact after the failure"
else
    fail "files damaged by the failure: $(cat "$dir/run.json")"
fi
checks=$((checks + 1))
ls "$dir/layers" "$dir/cache" | grep -q '\.tmp\.' && fail "temporary files left" || ok "no temporary files left"
"$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS || fail "resume after full disk"
same_layers "$tmp/ref" "$dir" "full disk then resumed"

# The best recipe with the options the preset leaves off: jitter,
# symba, weight decay, the softmax head (trained in ff-stream from per-layer
# neutral-row caches). Byte-identical to ff-mem, head included, and resumable.
BEST="--recipe best --layers 3 --hidden 96 --epochs 2 --batch 200 --train-limit 2000 --test-limit 300 --threads 2 --jitter 1 --loss symba --weight-decay 0.0001 --head-epochs 2 --data $data --quiet"
head_hash() { sed -n 's/.*"head_fnv1a64":[[:space:]]*"\([0-9a-f]*\)".*/\1/p' "$1/result.json"; }
"$FFTRAIN" --mode ff-stream --run "$tmp/best" $BEST || fail "ff-stream --recipe best"
"$FFTRAIN" --mode ff-mem --run "$tmp/best-mem" $BEST || fail "ff-mem --recipe best"
same_layers "$tmp/best" "$tmp/best-mem" "--recipe best: ff-stream == ff-mem"
checks=$((checks + 1))
best_head=$(head_hash "$tmp/best")
b=$(head_hash "$tmp/best-mem")
[ -n "$best_head" ] && [ "$best_head" = "$b" ] && ok "--recipe best: identical softmax heads $best_head" \
    || fail "head hash '$best_head' vs '$b'"
checks=$((checks + 1))
left=$(ls "$tmp/best/cache" | grep -v '^scores-003.f32$' || true)
[ -z "$left" ] && ok "--recipe best: caches removed after use" || fail "--recipe best: caches left behind: $left"
dir="$tmp/best-kill"
FFSTREAM_TEST_KILL=neutral:1:1 "$FFTRAIN" --mode ff-stream --run "$dir" $BEST 2>/dev/null
rc=$?
checks=$((checks + 1))
[ $rc -eq 137 ] && ok "--recipe best: killed in layer 1's neutral pass" || fail "--recipe best kill: exit $rc"
expect_refusal "resume with another --loss" "--loss was symba" --mode ff-stream --run "$dir" --resume $BEST --loss softplus
FFSTREAM_TEST_KILL=advanced:2:0 "$FFTRAIN" --mode ff-stream --run "$dir" --resume $BEST 2>/dev/null
"$FFTRAIN" --mode ff-stream --run "$dir" --resume $BEST || fail "--recipe best: resume"
same_layers "$tmp/best" "$dir" "--recipe best: killed twice then resumed"
checks=$((checks + 1))
[ "$(head_hash "$dir")" = "$best_head" ] && ok "--recipe best: resumed head identical" \
    || fail "--recipe best: resumed head $(head_hash "$dir") vs $best_head"

test_summary test_stream
