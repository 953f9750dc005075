#!/bin/sh
# tools/bench_stream.sh: the ff-stream benchmarks, in one run on this machine.
#  1. peak RSS of ff-stream at 2 and 12 layers (hidden 2000, batch 5000): flat
#     with depth (target: 12 layers within 5% of 2 layers) and close to the
#     analytic working set (target: within 1.25x);
#  2. wall time of ff-stream against ff-mem on the same 4-layer config
#     (target: at most 1.10x), runs alternated, best of REPEATS each.
#  3. with --contention: the peak RSS at 2 and 12 layers again while two
#     busy loops take both cores and a writer streams to the same disk
#     (target: 12 layers within 5% of 2 layers there too).
# Usage: tools/bench_stream.sh [--contention] [OUT.json]   (env: TRAIN_LIMIT,
#        TEST_LIMIT, REPEATS, RUN_ROOT for the run directories, default a
#        temp dir)
set -eu
cd "$(dirname "$0")/.."
. tools/setup.sh
ffstream_install
ffstream_build build
contention=0
if [ "${1:-}" = "--contention" ]; then
    contention=1
    shift
fi
out=${1:-results/stream-bench.json}
train=${TRAIN_LIMIT:-10000}
test_n=${TEST_LIMIT:-2000}
repeats=${REPEATS:-2}
root=${RUN_ROOT:-$(mktemp -d)}
mkdir -p "$root" "$(dirname "$out")"
common="--hidden 2000 --batch 5000 --epochs 1 --train-limit $train --test-limit $test_n --quiet"


run() { # run NAME ARGS...: fftrain with --json root/NAME.json, wall time in root/NAME.wall
    name=$1
    shift
    rm -rf "$root/$name.run"
    t0=$(date +%s.%N)
    ./build/fftrain "$@" $common --json "$root/$name.json"
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.3f\n", $2 - $1}' >"$root/$name.wall"
    rm -rf "$root/$name.run"
}

echo "== memory: ff-stream at 2 and 12 layers (train $train, test $test_n images)"
for L in 2 12; do
    run "stream-L$L" --mode ff-stream --layers $L --run "$root/stream-L$L.run"
    echo "  $L layers: peak RSS $(json_number "$root/stream-L$L.json" peak_rss_bytes) bytes," \
        "working set $(json_number "$root/stream-L$L.json" working_set_bytes) bytes"
done
if [ $contention = 1 ]; then
    echo "== memory under contention: two busy loops and a disk writer beside ff-stream"
    busy() { while :; do :; done; }
    busy & b1=$!
    busy & b2=$!
    ( while :; do dd if=/dev/zero of="$root/writer" bs=1M count=512 oflag=direct 2>/dev/null; done ) & w=$!
    trap 'kill $b1 $b2 $w 2>/dev/null' EXIT
    for L in 2 12; do
        run "busy-L$L" --mode ff-stream --layers $L --run "$root/busy-L$L.run"
        echo "  $L layers under contention: peak RSS $(json_number "$root/busy-L$L.json" peak_rss_bytes) bytes"
    done
    kill $b1 $b2 $w 2>/dev/null || true
    wait $b1 $b2 $w 2>/dev/null || true
    trap - EXIT
    rm -f "$root/writer"
fi
echo "== time: ff-stream vs ff-mem, 4 layers, best of $repeats each, alternated"
for r in $(seq 1 "$repeats"); do
    run "mem-$r" --mode ff-mem --layers 4
    run "stream-$r" --mode ff-stream --layers 4 --run "$root/stream-$r.run"
    echo "  repeat $r: ff-mem $(cat "$root/mem-$r.wall") s, ff-stream $(cat "$root/stream-$r.wall") s"
done
best() { for r in $(seq 1 "$repeats"); do cat "$root/$1-$r.wall"; done | sort -n | head -1; }
mem_s=$(best mem)
stream_s=$(best stream)
rss2=$(json_number "$root/stream-L2.json" peak_rss_bytes)
rss12=$(json_number "$root/stream-L12.json" peak_rss_bytes)
ws12=$(json_number "$root/stream-L12.json" working_set_bytes)
acc_mem=$(json_number "$root/mem-1.json" test_accuracy)
acc_stream=$(json_number "$root/stream-1.json" test_accuracy)
cat >"$out" <<JSON
{
  "command": "tools/bench_stream.sh",
  "train_samples": $train, "test_samples": $test_n, "hidden": 2000, "batch": 5000, "epochs": 1,
  "machine": "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)",
  "ff_stream_peak_rss_bytes": {"2": $rss2, "12": $rss12},
  "ff_stream_working_set_bytes_12": $ws12,
  "rss_12_over_2": $(echo "$rss12 $rss2" | awk '{printf "%.4f", $1 / $2}'),
  "rss_12_over_working_set": $(echo "$rss12 $ws12" | awk '{printf "%.4f", $1 / $2}'),
  "wall_seconds_4_layers": {"ff_mem": $mem_s, "ff_stream": $stream_s},
  "stream_over_mem_time": $(echo "$stream_s $mem_s" | awk '{printf "%.4f", $1 / $2}'),
  "test_accuracy_4_layers": {"ff_mem": $acc_mem, "ff_stream": $acc_stream}$(if [ $contention = 1 ]; then
    b2=$(json_number "$root/busy-L2.json" peak_rss_bytes)
    b12=$(json_number "$root/busy-L12.json" peak_rss_bytes)
    printf ',\n  "contention": "two busy loops on both cores and a dd writer with O_DIRECT on the same disk",\n'
    printf '  "ff_stream_peak_rss_bytes_under_contention": {"2": %s, "12": %s},\n' "$b2" "$b12"
    printf '  "rss_12_over_2_under_contention": %s' "$(echo "$b12 $b2" | awk '{printf "%.4f", $1 / $2}')"
fi)
}
JSON
cat "$out"
