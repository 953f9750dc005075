#!/bin/sh
# tools/bench_throughput.sh: where Forward-Forward's time goes, against what
# cblas_sgemm alone reaches on the same shapes, in one run on this machine.
# Two shapes, LAYERS layers each, TRAIN_LIMIT / TEST_LIMIT images:
#   seed    the original experiment's: hidden 2000, batch 5000, 1 epoch
#   recipe  --recipe best read out by goodness (hidden 1000, batch 200), 1 epoch
# Per shape:
#   - bench_gemm at the products' shapes (every phase multiplies `batch` rows:
#     a step's positives and negatives, a pass's chunk, an evaluation chunk of
#     batch/10 images x 10 labels), for the first layer and for a hidden one;
#   - ff-mem and ff-stream: each phase's GFLOP/s (the training steps, the
#     next layer's pass, the evaluation; fftrain's "phases") and its fraction
#     of the sgemm roofline, whose rate weighs each layer's product by its
#     size; the seconds of every layer;
#   - bp: train seconds and GFLOP/s;
#   - seed shape only, when a python3 imports torch (Debian's python3-torch):
#     the PyTorch reference's FF and bp (tools/reference/ff_torch.py).
# Writes OUT (default results/throughput.json) and prints a table.
# Usage: tools/bench_throughput.sh [OUT.json]   (env: TRAIN_LIMIT [10000],
#        TEST_LIMIT [2000], LAYERS [3], THREADS [online CPUs])
set -eu
cd "$(dirname "$0")/.."
. tools/setup.sh
ffstream_install
ffstream_build build
out=${1:-results/throughput.json}
train=${TRAIN_LIMIT:-10000}
test_n=${TEST_LIMIT:-2000}
layers=${LAYERS:-3}
threads=${THREADS:-$(nproc)}
[ "$layers" -ge 2 ] || { echo "bench_throughput: LAYERS must be at least 2" >&2; exit 2; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$(dirname "$out")"

flat() { tr -d ' \t\n' <"$1"; }
# phase FILE PHASE FIELD: a field of one of fftrain's phases
phase() { flat "$1" | sed -n "s/.*\"$2\":{\([^}]*\)}.*/\1/p" | grep -o "\"$3\":[0-9.e+-]*" | cut -d: -f2; }
# layer_seconds FILE: every layer's seconds, comma-separated
layer_seconds() {
    flat "$1" | sed 's/.*"per_layer":\(\[[^]]*\]\).*/\1/' | grep -o '"seconds":[0-9.e+-]*' |
        cut -d: -f2 | paste -sd, -
}
# gemm ROWS IN OUT: "forward step-mix" GFLOP/s of cblas_sgemm, best of 10
gemm() {
    build/bench_gemm "$1" "$2" "$3" "$threads" 10 |
        sed -n 's/.*forward \([0-9.]*\) GFLOP\/s, weight gradient [0-9.]* GFLOP\/s, FF step mix \([0-9.]*\) GFLOP\/s.*/\1 \2/p'
}
# roofline W0 R0 W1 R1 N1: the rate of one product of weight W0 at R0 and
# N1 of weight W1 at R1 (time adds up, work adds up)
roofline() { awk -v w0="$1" -v r0="$2" -v w1="$3" -v r1="$4" -v n="$5" \
    'BEGIN { printf "%.1f", (w0 + n * w1) / (w0 / r0 + n * w1 / r1) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
# The interpreter that imports torch: Debian's, else python3 on PATH.
py=""
for p in /usr/bin/python3 python3; do
    if "$p" -c "import torch" >/dev/null 2>&1; then py=$p; break; fi
done

json_shapes=""
table=""
for shape in seed recipe; do
    if [ $shape = seed ]; then
        flags="--hidden 2000 --batch 5000 --epochs 1"
    else
        flags="--recipe best --eval goodness --epochs 1"
    fi
    common="--layers $layers $flags --train-limit $train --test-limit $test_n --threads $threads
            --mem-budget none --quiet"
    echo "== $shape: fftrain $(echo $common)"
    for mode in ff-mem ff-stream bp; do
        t0=$(date +%s.%N)
        run=""
        [ $mode = ff-stream ] && run="--run $root/$shape-$mode.run"
        # shellcheck disable=SC2086
        ./build/fftrain --mode $mode $common $run --json "$root/$shape-$mode.json"
        t1=$(date +%s.%N)
        echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}' >"$root/$shape-$mode.wall"
        rm -rf "$root/$shape-$mode.run"
        echo "  $mode: $(cat "$root/$shape-$mode.wall") s"
    done
    j="$root/$shape-ff-mem.json"
    hidden=$(json_number "$j" hidden)
    batch=$(json_number "$j" batch)
    in0=$(json_number "$j" in)
    set -- $(gemm "$batch" "$in0" "$hidden")
    f0=$1 s0=$2
    set -- $(gemm "$batch" "$hidden" "$hidden")
    f1=$1 s1=$2
    w0=$((in0 * hidden))
    w1=$((hidden * hidden))
    # The steps run on every layer, the next layer's pass on all but the
    # last, the evaluation on every layer.
    roof_step=$(roofline $w0 "$s0" $w1 "$s1" $((layers - 1)))
    roof_pass=$(roofline $w0 "$f0" $w1 "$f1" $((layers - 2)))
    roof_eval=$(roofline $w0 "$f0" $w1 "$f1" $((layers - 1)))
    echo "  sgemm: $batch x $in0 -> $hidden forward $f0, step mix $s0; $batch x $hidden -> $hidden" \
        "forward $f1, step mix $s1 GFLOP/s"
    modes_json=""
    for mode in ff-mem ff-stream; do
        j="$root/$shape-$mode.json"
        phases_json=""
        for ph in step next_layer_pass evaluation; do
            case $ph in
                step) roof=$roof_step ;;
                next_layer_pass) roof=$roof_pass ;;
                evaluation) roof=$roof_eval ;;
            esac
            rate=$(phase "$j" $ph gflops_per_second)
            secs=$(phase "$j" $ph seconds)
            frac=$(ratio "$rate" "$roof")
            phases_json="$phases_json${phases_json:+, }\"$ph\": {\"seconds\": $secs, \"gflops_per_second\": $rate, \"sgemm_gflops_per_second\": $roof, \"of_sgemm\": $frac}"
            table="$table$shape | $mode | $ph | $(printf %.2f "$secs") s | $(printf %.1f "$rate") | $roof | $frac
"
        done
        modes_json="$modes_json${modes_json:+,
    }\"$mode\": {\"wall_seconds\": $(cat "$root/$shape-$mode.wall"), \"train_seconds\": $(json_number "$j" train_seconds), \"eval_seconds\": $(json_number "$j" eval_seconds), \"layer_seconds\": [$(layer_seconds "$j")], \"test_accuracy\": $(json_number "$j" test_accuracy), \"weights_fnv1a64\": \"$(flat "$j" | grep -o '"weights_fnv1a64":"[0-9a-f]*"' | cut -d'"' -f4)\", \"phases\": {$phases_json}}"
    done
    j="$root/$shape-bp.json"
    modes_json="$modes_json,
    \"bp\": {\"wall_seconds\": $(cat "$root/$shape-bp.wall"), \"train_seconds\": $(json_number "$j" train_seconds), \"train_gflops_per_second\": $(json_number "$j" train_gflops_per_second), \"test_accuracy\": $(json_number "$j" test_accuracy)}"
    table="$table$shape | bp | training | $(printf %.2f "$(json_number "$j" train_seconds)") s | $(printf %.1f "$(json_number "$j" train_gflops_per_second)") | | 
"
    if [ $shape = seed ] && [ -n "$py" ]; then
        for m in ff bp; do
            t0=$(date +%s.%N)
            "$py" tools/reference/ff_torch.py --mode $m --layers "$layers" --hidden 2000 \
                --batch 5000 --epochs 1 --lr 0.03 --train-limit "$train" --test-limit "$test_n" \
                --threads "$threads" --quiet --json "$root/torch-$m.json"
            t1=$(date +%s.%N)
            w=$(echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}')
            echo "  torch-$m: $w s"
            modes_json="$modes_json,
    \"torch-$m\": {\"wall_seconds\": $w, \"train_seconds\": $(json_number "$root/torch-$m.json" train_seconds), \"eval_seconds\": $(json_number "$root/torch-$m.json" eval_seconds), \"test_accuracy\": $(json_number "$root/torch-$m.json" test_accuracy)}"
            table="$table$shape | torch-$m | training | $(printf %.2f "$(json_number "$root/torch-$m.json" train_seconds)") s | | | 
"
        done
    fi
    json_shapes="$json_shapes${json_shapes:+,
  }\"$shape\": {\"flags\": \"$(echo $flags)\", \"hidden\": $hidden, \"batch\": $batch, \"first_layer_in\": $in0,
    \"sgemm\": {\"first_layer\": {\"forward\": $f0, \"step_mix\": $s0}, \"hidden_layer\": {\"forward\": $f1, \"step_mix\": $s1}},
    $modes_json}"
done

cat >"$out.tmp" <<JSON
{
  "command": "tools/bench_throughput.sh",
  "commit": "$(git rev-parse HEAD 2>/dev/null || echo unknown)",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "machine": "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)",
  "load_average_1m_end": $(cut -d' ' -f1 /proc/loadavg),
  "layers": $layers, "train_samples": $train, "test_samples": $test_n, "threads": $threads,
  $json_shapes
}
JSON
mv "$out.tmp" "$out"
echo "shape | mode | phase | seconds | GFLOP/s | sgemm GFLOP/s | of sgemm"
printf "%s" "$table"
echo "wrote $out"
