#!/bin/sh
# tools/run.sh: installs what is missing, builds, and runs the main job,
# each run in its own process, in tables on stdout and JSON + SVG charts:
#  1. memory at equal accuracy: ff-stream, ff-mem and bp at depths 2..22 in
#     configurations that learn (FF: --recipe best read out by its own
#     goodness, bp: Adam 3e-5, which trains at every depth; 1,000 units,
#     batch 200, 3 epochs, 10,000 training images) -> results/memory.json,
#     results/memory.svg;
#  2. the original experiment's configuration (hidden 2000, batch 5000,
#     1 epoch, lr 0.03), whose FF does not learn in one epoch, kept so its
#     numbers stay reproducible -> results/memory-original.json, .svg;
#  3. the constrained experiment: the same trainers under a 256 MiB cgroup
#     limit, up to 60 layers, whose weights and Adam state (2.85 GB) are over
#     10x the limit -> results/cgroup.json, results/cgroup.svg (skipped with
#     the reason when no writable memory cgroup exists);
#  4. with python3-torch installed (optional, not installed by this script),
#     the PyTorch reference beside ffstream at 2, 7 and 12 layers of the
#     original configuration -> results/torch.json, results/torch.svg.
# Each run of this script replaces those results (ffprofile --force).
# ff-recurrent is left out: about 45 minutes at the original shape (README,
# "Recurrent FF").
# tools/run.sh --full runs the original experiment instead: layers 2..47
# step 5, hidden 2000, batch 5000, 1 epoch, all 60,000 images (hours); run
# again, it resumes the sweep in results/full.json.
# tools/run.sh --beyond-ram runs tools/beyond_ram.sh: a network whose
# weights and Adam state exceed this machine's RAM, trained in a 1 GiB
# cgroup (about 40 minutes here; resumable).
# tools/run.sh --wide runs tools/wide.sh: a network with a layer whose
# weights and Adam state are 12x a 1 GiB cgroup, trained in tiles streamed
# from disk (resumable).
# OUT=DIR writes the results elsewhere (default results/).
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--wide" ]; then
    shift
    exec sh tools/wide.sh "$@"
fi
if [ "${1:-}" = "--beyond-ram" ]; then
    shift
    exec sh tools/beyond_ram.sh "$@"
fi
. tools/setup.sh
FFSTREAM_PACKAGES="$FFSTREAM_PACKAGES librsvg2-bin"
ffstream_install
ffstream_build build
out=${OUT:-results}
mkdir -p "$out"

png() { command -v rsvg-convert >/dev/null 2>&1 && echo "--png $1" || true; }

if [ "${1:-}" = "--full" ]; then
    echo "== the original experiment: 3 trainers x layers 2..47, all data"
    # Hours: a sweep stopped (Ctrl-C, a reboot) continues where it stopped
    # when this script is run again.
    if [ -f "$out/full.json" ]; then
        ./build/ffprofile --full --resume "$out/full.json"
    else
        ./build/ffprofile --full --out "$out/full.json"
    fi
    ./build/ffplot "$out/full.json" -o "$out/full.svg" $(png "$out/full.png")
    echo "results: $out/full.json $out/full.svg"
    exit 0
fi

echo "== memory at equal accuracy: ff-stream, ff-mem, bp; layers 2..22; hidden 1000, batch 200, 3 epochs"
./build/ffprofile --modes ff-stream,ff-mem,bp --layers 2:22:5 --hidden 1000 --batch 200 \
    --epochs 3 --recipe best --eval goodness --bp-lr 0.00003 --train-limit 10000 \
    --test-limit 2000 --force --out "$out/memory.json"
./build/ffplot "$out/memory.json" -o "$out/memory.svg" $(png "$out/memory.png") \
    --title "Memory at equal accuracy: FF (recipe best, goodness read-out) and bp (Adam 3e-5)"

echo "== the original configuration: layers 2..22; hidden 2000, batch 5000, 1 epoch, lr 0.03"
./build/ffprofile --modes ff-stream,ff-mem,bp --layers 2:22:5 --hidden 2000 --batch 5000 \
    --epochs 1 --train-limit 10000 --test-limit 2000 --force --out "$out/memory-original.json"
./build/ffplot "$out/memory-original.json" -o "$out/memory-original.svg" \
    $(png "$out/memory-original.png")

echo "== constrained: every run in a cgroup limited to 256 MiB, no swap"
if probe=$(./build/ffcgroup --limit 64M --quiet -- true 2>&1); then
    ./build/ffprofile --modes ff-stream,ff-mem,bp --layers 3,12,60 --hidden 2000 --batch 1000 \
        --epochs 1 --train-limit 4000 --test-limit 1000 --mem-limit 256M --force \
        --out "$out/cgroup.json"
    ./build/ffplot "$out/cgroup.json" -o "$out/cgroup.svg" $(png "$out/cgroup.png")
else
    echo "skipped: no writable memory cgroup here:"
    echo "$probe"
fi
echo "== PyTorch on the same axes: layers 2, 7, 12 of the original configuration"
if torch_probe=$(/usr/bin/python3 -c "import torch, numpy" 2>&1); then
    ./build/ffprofile --modes ff-stream,ff-mem,bp,torch-ff,torch-bp --layers 2,7,12 --hidden 2000 \
        --batch 5000 --epochs 1 --train-limit 10000 --test-limit 2000 --force --out "$out/torch.json"
    ./build/ffplot "$out/torch.json" -o "$out/torch.svg" $(png "$out/torch.png")
else
    echo "skipped: python3-torch is not installed (apt-get install python3-torch): $torch_probe"
fi
echo "results in $out/"
