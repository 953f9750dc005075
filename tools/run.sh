#!/bin/sh
# tools/run.sh: installs what is missing, builds, and runs the main job:
# ff-mem and bp trained on Fashion-MNIST with the same body, printing test
# accuracy, seconds and peak memory of each. Results go to results/.
set -eu
cd "$(dirname "$0")/.."
. tools/setup.sh
ffstream_install
ffstream_build build

out=${FFSTREAM_RESULTS:-results}
mkdir -p "$out"
common="--layers 2 --hidden 500 --batch 1000 --progress"
echo "== ff-mem: 2 x 500, batch 1000, lr 0.01, 10 epochs per layer (full Fashion-MNIST)"
./build/fftrain --mode ff-mem $common --lr 0.01 --epochs 10 --json "$out/ff-mem.json"
echo "== bp: 2 x 500 + head, batch 1000, lr 0.001, 10 epochs"
./build/fftrain --mode bp $common --lr 0.001 --epochs 10 --json "$out/bp.json"
echo "results: $out/ff-mem.json $out/bp.json"
