#!/bin/sh
# tools/run.sh: installs what is missing, builds, and runs the main job:
#  1. the memory profile: ff-stream, ff-mem and bp on Fashion-MNIST at depths
#     2..22 (hidden 2000, batch 5000, 1 epoch, 10,000 training images), each
#     run in its own process -> results/memory.json, results/memory.svg;
#     ff-recurrent is left out: about 45 minutes at this shape (README,
#     "Recurrent FF");
#  2. the constrained experiment: the same trainers under a 256 MiB cgroup
#     limit, up to 60 layers, whose weights and Adam state (2.85 GB) are over
#     10x the limit -> results/cgroup.json, results/cgroup.svg (skipped with
#     the reason when no writable memory cgroup exists).
# tools/run.sh --full runs the original experiment instead: layers 2..47
# step 5, hidden 2000, batch 5000, 1 epoch, all 60,000 images (hours); run
# again, it resumes the sweep in results/memory-full.json.
# tools/run.sh --beyond-ram runs tools/beyond_ram.sh: a network whose
# weights and Adam state exceed this machine's RAM, trained in a 1 GiB
# cgroup (about 40 minutes here; resumable).
# OUT=DIR writes the results elsewhere (default results/).
set -eu
cd "$(dirname "$0")/.."
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
    if [ -f "$out/memory-full.json" ]; then
        ./build/ffprofile --full --resume "$out/memory-full.json"
    else
        ./build/ffprofile --full --out "$out/memory-full.json"
    fi
    ./build/ffplot "$out/memory-full.json" -o "$out/memory-full.svg" $(png "$out/memory-full.png")
    echo "results: $out/memory-full.json $out/memory-full.svg"
    exit 0
fi

echo "== memory profile: ff-stream, ff-mem, bp; layers 2..22; hidden 2000, batch 5000"
./build/ffprofile --modes ff-stream,ff-mem,bp --layers 2:22:5 --hidden 2000 --batch 5000 \
    --epochs 1 --train-limit 10000 --test-limit 2000 --out "$out/memory.json"
./build/ffplot "$out/memory.json" -o "$out/memory.svg" $(png "$out/memory.png")

echo "== constrained: every run in a cgroup limited to 256 MiB, no swap"
if probe=$(./build/ffcgroup --limit 64M --quiet -- true 2>&1); then
    ./build/ffprofile --modes ff-stream,ff-mem,bp --layers 3,12,60 --hidden 2000 --batch 1000 \
        --epochs 1 --train-limit 4000 --test-limit 1000 --mem-limit 256M --out "$out/cgroup.json"
    ./build/ffplot "$out/cgroup.json" -o "$out/cgroup.svg" $(png "$out/cgroup.png")
else
    echo "skipped: no writable memory cgroup here:"
    echo "$probe"
fi
echo "results in $out/"
