#!/bin/sh
# tools/wide.sh: trains, with ff-stream, a network with a layer far wider
# than memory: its weights and Adam state are at least 8 times the memory
# cgroup the run is held in. fftrain's plan (--mem-budget auto: the
# cgroup's limit) cuts each layer into tiles of output units, streamed
# from disk a tile at a time (tiles.h).
#
#   tools/wide.sh [--hidden H] [--limit SIZE] [--work DIR] [--out DIR] [--fresh]
#
#   --hidden H   units per layer [32768: the second layer, 32768 x 32768,
#                holds 12 GiB of weights and Adam moments]
#   --limit SIZE the cgroup's memory limit, the run's budget [1G]
#   --work DIR   the run directory's parent (about 27 GB at the peak: the
#                committed state, the next step's, the caches)
#                [$FFSTREAM_WORK or work/wide]
#   --out DIR    results/wide.json (fftrain's result: every stream over the
#                tiles with its seconds, bytes read and written and the time
#                spent waiting for I/O), wide-cgroup.json (ffcgroup's
#                record: the cgroup peak), wide-gemm.txt (bench_gemm on the
#                tile's shapes, right after the run) and wide.svg [results]
#   --fresh      delete an earlier run in --work first
#
# 2 layers, 2,000 training images, 1 epoch, batches of 500 images and their
# 500 negatives, 100 test images scored by every-label goodness. Stopped,
# the same command resumes the run, inside a step at a tile boundary.
set -eu
cd "$(dirname "$0")/.."
hidden=32768 limit=1G work=${FFSTREAM_WORK:-work/wide} out=results fresh=0
while [ $# -gt 0 ]; do
    case $1 in
    --hidden) hidden=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "wide.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
. tools/setup.sh
ffstream_install
ffstream_build build

if ! probe=$(./build/ffcgroup --limit 64M --quiet -- true 2>&1); then
    echo "wide.sh: needs a writable memory cgroup to hold the run to $limit:" >&2
    echo "$probe" >&2
    exit 1
fi
mkdir -p "$work" "$out"
run="$work/run"
if [ $fresh = 1 ]; then rm -rf "$run" "$work/result.json"; fi
flags="--mode ff-stream --layers 2 --hidden $hidden --epochs 1 --batch 1000 --train-limit 2000
    --test-limit 100 --eval goodness --threads 2 --run $run"

echo "== the plan"
./build/fftrain $flags --mem-budget "$limit" --plan --json "$work/plan.json"
units=$(json_number "$work/plan.json" tile_units_chosen | cut -d. -f1)
if [ "${units:-0}" = 0 ]; then
    echo "wide.sh: the plan needs no tiles under $limit; use a larger --hidden" >&2
    exit 1
fi

if [ ! -f "$run/result.json" ]; then
    resume=""
    [ -f "$run/run.json" ] && resume=--resume
    echo "== training ${resume:+(resuming) }2 layers x $hidden in a cgroup limited to $limit, tiles of $units units"
    ./build/ffcgroup --limit "$limit" --json "$work/cgroup.json" -- \
        ./build/fftrain $flags $resume --progress --json "$work/result.json"
fi
# The tile streams' products against sgemm on the same shapes, measured
# right after the run (the rate of the machine now, not of another day).
./build/bench_gemm 1000 "$hidden" "$units" 2 3 | tee "$work/gemm.txt"
cp "$work/result.json" "$out/wide.json"
cp "$work/gemm.txt" "$out/wide-gemm.txt"
cp "$work/cgroup.json" "$out/wide-cgroup.json"
./build/ffplot "$out/wide.json" -o "$out/wide.svg"

r=$out/wide.json
echo "== a layer wider than memory"
awk -v state="$(json_number "$work/plan.json" state_bytes)" \
    -v peak="$(json_number "$out/wide-cgroup.json" cgroup_peak_bytes)" \
    -v limit="$(json_number "$out/wide-cgroup.json" limit_bytes)" 'BEGIN {
    printf "network      %.2f GiB of weights and Adam moments (every layer), %.1fx the cgroup limit\n",
        state / 1073741824, state / limit
    printf "cgroup peak  %.1f MiB under a %.0f MiB limit\n", peak / 1048576, limit / 1048576 }'
sgemm=$(sed -n 's/.*FF step mix \([0-9.]*\) GFLOP\/s.*/\1/p' "$out/wide-gemm.txt")
tr -d ' \t\n' <"$r" | grep -o '{"kind":"[a-z]*","layer":2[^}]*}' |
    awk -v sgemm="$sgemm" -F'[:,]' '{
        sub(/^[{]/, "")
        for (i = 1; i < NF; i++) v[$i] = $(i + 1)
        kind = v["\"kind\""]; gsub(/"/, "", kind)
        n[kind]++; s[kind] += v["\"seconds\""]; w[kind] += v["\"io_wait_seconds\""]
        g[kind] += v["\"gflop\""]; rd[kind] += v["\"bytes_read\""]; wr[kind] += v["\"bytes_written\""]
    } END {
        for (k in n) {
            if (s[k] <= 0) continue
            printf "%-9s %2d streams, %6.1f s, waiting for I/O %4.1f%%, %5.1f GiB read, %5.1f GiB written, %5.1f GFLOP/s (%.0f%% of sgemm)\n",
                k, n[k], s[k], 100 * w[k] / s[k], rd[k] / 1073741824, wr[k] / 1073741824,
                (s[k] > 0 ? g[k] / s[k] : 0), (s[k] > 0 && sgemm > 0 ? 100 * g[k] / s[k] / sgemm : 0)
        }
    }'
echo "accuracy     $(json_number "$r" test_accuracy)"
echo "results: $out/wide.json $out/wide-cgroup.json $out/wide.svg"
