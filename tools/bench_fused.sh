#!/bin/sh
# tools/bench_fused.sh: what --fused-pass costs in accuracy and saves in time,
# in one run on this machine.
#   recipe  ff-mem --recipe best (10 epochs per layer), once without and once
#           with --fused-pass: the accuracies (softmax head and FF goodness),
#           the wall seconds and the separate pass's seconds;
#   seed    ff-stream at the original experiment's shape (hidden 2000, batch
#           5000, 1 epoch, LAYERS layers), REPEATS pairs run in turn
#           (fused, unfused, fused, ...): the median wall seconds of each and
#           the median of the pairs' ratios, so a drift in the machine's
#           speed moves both sides of a pair alike.
# Writes OUT (default results/fused-pass.json) and prints a summary.
# Usage: tools/bench_fused.sh [OUT.json]   (env: TRAIN_LIMIT [0 = all],
#        LAYERS [3], REPEATS [3], THREADS [online CPUs])
set -eu
cd "$(dirname "$0")/.."
. tools/setup.sh
ffstream_install
ffstream_build build
out=${1:-results/fused-pass.json}
train=${TRAIN_LIMIT:-0}
layers=${LAYERS:-3}
repeats=${REPEATS:-3}
threads=${THREADS:-$(nproc)}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$(dirname "$out")"

# timed FILE CMD...: runs CMD, writes its wall seconds to FILE
timed() {
    f=$1
    shift
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}' >"$f"
}
# phase_seconds FILE PHASE: the seconds of one of fftrain's phases
phase_seconds() {
    tr -d ' \t\n' <"$1" | sed -n "s/.*\"$2\":{\"seconds\":\([0-9.e+-]*\).*/\1/p"
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

recipe_json=""
for variant in unfused fused; do
    flag=""
    [ $variant = fused ] && flag="--fused-pass"
    echo "== recipe, $variant: fftrain --mode ff-mem --recipe best $flag --train-limit $train"
    j="$root/recipe-$variant.json"
    # shellcheck disable=SC2086
    timed "$root/recipe-$variant.wall" ./build/fftrain --mode ff-mem --recipe best $flag \
        --train-limit "$train" --threads "$threads" --mem-budget none --quiet --json "$j"
    recipe_json="$recipe_json${recipe_json:+,
    }\"$variant\": {\"wall_seconds\": $(cat "$root/recipe-$variant.wall"), \"softmax_accuracy\": $(json_number "$j" softmax_accuracy), \"goodness_accuracy\": $(json_number "$j" goodness_accuracy), \"step_seconds\": $(phase_seconds "$j" step), \"next_layer_pass_seconds\": $(phase_seconds "$j" next_layer_pass), \"head_seconds\": $(json_number "$j" head_seconds)}"
    echo "  softmax $(json_number "$j" softmax_accuracy), goodness $(json_number "$j" goodness_accuracy)," \
        "$(cat "$root/recipe-$variant.wall") s"
done

seed="--mode ff-stream --layers $layers --hidden 2000 --batch 5000 --epochs 1 --train-limit $train
      --threads $threads --mem-budget none --quiet"
echo "== seed: fftrain $(echo $seed) [--fused-pass], $repeats pairs"
: >"$root/fused.w"
: >"$root/unfused.w"
: >"$root/ratio"
i=0
while [ $i -lt "$repeats" ]; do
    for variant in fused unfused; do
        flag=""
        [ $variant = fused ] && flag="--fused-pass"
        rm -rf "$root/run"
        # shellcheck disable=SC2086
        timed "$root/w" ./build/fftrain $seed $flag --run "$root/run" --json "$root/seed-$variant.json"
        cat "$root/w" >>"$root/$variant.w"
        echo >>"$root/$variant.w"
    done
    a=$(tail -1 "$root/fused.w")
    b=$(tail -1 "$root/unfused.w")
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f\n", a / b }' >>"$root/ratio"
    echo "  pair $((i + 1)): fused $a s, unfused $b s"
    i=$((i + 1))
done
list() { paste -sd, "$1"; }

cat >"$out.tmp" <<JSON
{
  "command": "tools/bench_fused.sh",
  "commit": "$(git rev-parse HEAD 2>/dev/null || echo unknown)",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "machine": "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)",
  "train_limit": $train, "threads": $threads,
  "recipe": {"flags": "--mode ff-mem --recipe best",
    $recipe_json},
  "seed": {"flags": "$(echo $seed)", "pairs": $repeats,
    "fused_wall_seconds": [$(list "$root/fused.w")], "unfused_wall_seconds": [$(list "$root/unfused.w")],
    "fused_over_unfused": [$(list "$root/ratio")],
    "median_fused_over_unfused": $(median <"$root/ratio"),
    "fused_test_accuracy": $(json_number "$root/seed-fused.json" test_accuracy),
    "unfused_test_accuracy": $(json_number "$root/seed-unfused.json" test_accuracy),
    "fused_peak_rss_bytes": $(json_number "$root/seed-fused.json" peak_rss_bytes),
    "unfused_peak_rss_bytes": $(json_number "$root/seed-unfused.json" peak_rss_bytes)}
}
JSON
mv "$out.tmp" "$out"
echo "seed: fused / unfused wall, median of $repeats pairs: $(median <"$root/ratio")"
echo "wrote $out"
