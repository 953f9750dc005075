#!/bin/sh
# tools/beyond_ram.sh: trains, with ff-stream, a network whose weights and
# Adam state are larger than this machine's physical memory (MemTotal in
# /proc/meminfo), inside a memory cgroup of at most 1 GiB.
#
#   tools/beyond_ram.sh [--layers N|auto] [--hidden H] [--limit SIZE]
#                       [--work DIR] [--out DIR] [--fresh]
#
#   --layers auto   the fewest layers whose state is at least 1.05x RAM
#                   (default; fftrain's --plan gives the state of a depth)
#   --hidden H      units per layer [4096]
#   --limit SIZE    the cgroup's memory limit, which is also the run's
#                   memory budget [1G]
#   --work DIR      where the run directory lives: it grows to the whole
#                   state plus two layers' caches (about 26 GB here)
#                   [$FFSTREAM_WORK or work/beyond-ram]
#   --out DIR       results/beyond-ram.json (fftrain's result, every layer's
#                   seconds, sampled RSS and cgroup peaks, bytes read and
#                   written, disk), beyond-ram.svg, beyond-ram-cgroup.json
#                   (ffcgroup's record of the last sitting) and
#                   beyond-ram-sittings.log [results]
#   --fresh         delete an earlier run in --work first
#
# The run is resumable: stopped (Ctrl-C, a kill, a reboot), the same command
# continues it where it stopped, and the result covers every layer.
# 1 epoch on 10,000 training images, 1,000 test images scored by every-label
# goodness, recipe best, checkpoints uncompressed (so the plan's disk is
# exact) and with their Adam moments (so the state really is on disk).
set -eu
cd "$(dirname "$0")/.."
layers=auto hidden=4096 limit=1G work=${FFSTREAM_WORK:-work/beyond-ram} out=results fresh=0
while [ $# -gt 0 ]; do
    case $1 in
    --layers) layers=$2; shift 2 ;;
    --hidden) hidden=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "beyond_ram.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
. tools/setup.sh
FFSTREAM_PACKAGES="$FFSTREAM_PACKAGES librsvg2-bin"
ffstream_install
ffstream_build build

# A JSON number field's first value (the files are fftrain's and ffcgroup's).
field() { sed -n "s/.*\"$2\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" "$1" | head -1; }

if ! probe=$(./build/ffcgroup --limit 64M --quiet -- true 2>&1); then
    echo "beyond_ram.sh: needs a writable memory cgroup to hold the run to $limit:" >&2
    echo "$probe" >&2
    exit 1
fi
mkdir -p "$work" "$out"
run="$work/run"
if [ $fresh = 1 ]; then rm -rf "$run" "$work/sittings.log"; fi

common="--mode ff-stream --hidden $hidden --epochs 1 --batch 1000 --train-limit 10000
    --test-limit 1000 --recipe best --eval goodness --checkpoint-codec raw
    --keep-optimizer all --threads 2"
if [ "$layers" = auto ]; then
    # The state of 2 and 3 layers gives the first layer's and every other's.
    ./build/fftrain $common --layers 2 --run "$run" --plan --json "$work/plan-2.json" >/dev/null
    ./build/fftrain $common --layers 3 --run "$run" --plan --json "$work/plan-3.json" >/dev/null
    s2=$(field "$work/plan-2.json" state_bytes | cut -d. -f1)
    s3=$(field "$work/plan-3.json" state_bytes | cut -d. -f1)
    ram=$(field "$work/plan-2.json" machine_ram_bytes | cut -d. -f1)
    per=$((s3 - s2))
    first=$((s2 - per))
    want=$((ram + ram / 20))
    layers=$(((want - first + per - 1) / per + 1))
fi
flags="$common --layers $layers --run $run"

echo "== the plan"
./build/fftrain $flags --mem-budget "$limit" --plan --json "$work/plan.json"
state=$(field "$work/plan.json" state_bytes | cut -d. -f1)
ram=$(field "$work/plan.json" machine_ram_bytes | cut -d. -f1)
if [ "$state" -le "$ram" ]; then
    echo "beyond_ram.sh: $layers layers of $hidden hold $state bytes, not more than the $ram of RAM; use more --layers" >&2
    exit 1
fi

resume=""
if [ -f "$run/run.json" ]; then
    resume=--resume
    echo "== resuming $run"
else
    echo "== training $layers layers x $hidden in a cgroup limited to $limit"
fi
sitting=$(( $(cat "$work/sittings.log" 2>/dev/null | wc -l) + 1 ))
status_file="$work/status"
# fftrain's budget is the cgroup's limit (--mem-budget auto): its chunks are
# fitted to it. Progress lines, one per layer with an ETA, go to the log too.
{
    set +e
    ./build/ffcgroup --limit "$limit" --json "$work/cgroup.json" -- \
        ./build/fftrain $flags $resume --progress --json "$work/result.json"
    echo $? >"$status_file"
} 2>&1 | tee -a "$work/log"
status=$(cat "$status_file")
summary=$(tail -1 "$work/log")
echo "sitting $sitting: exit $status: $summary" >>"$work/sittings.log"
if [ "$status" != 0 ]; then
    echo "beyond_ram.sh: the run stopped (exit $status); run the same command again to resume it" >&2
    exit "$status"
fi

cp "$work/result.json" "$out/beyond-ram.json"
cp "$work/cgroup.json" "$out/beyond-ram-cgroup.json"
cp "$work/sittings.log" "$out/beyond-ram-sittings.log"
png=""
command -v rsvg-convert >/dev/null 2>&1 && png="--png $out/beyond-ram.png"
./build/ffplot "$out/beyond-ram.json" -o "$out/beyond-ram.svg" $png

r=$out/beyond-ram.json
gib() { awk -v b="$1" 'BEGIN { printf "%.2f GiB", b / 1073741824 }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f%%", 100 * (a - b) / b }'; }
plan_mem=$(field "$r" memory_peak_bytes)
accounted=$(field "$r" accounted_peak_bytes)
plan_disk=$(field "$r" disk_peak_bytes)
disk=$(field "$r" measured_disk_peak_bytes)
echo "== beyond RAM: $layers layers x $hidden"
echo "state            $(gib "$state") of weights and Adam moments, $(awk -v r="$(field "$r" to_ram)" 'BEGIN { printf "%.3f", r }')x the $(gib "$ram") of RAM"
echo "cgroup peak      $(mib "$(field "$out/beyond-ram-cgroup.json" cgroup_peak_bytes)") under a $limit limit (last sitting)"
echo "peak RSS         $(mib "$(field "$r" peak_rss_bytes)")"
echo "memory plan      $(mib "$plan_mem"), accounted $(mib "$accounted") ($(pct "$accounted" "$plan_mem"))"
echo "disk plan        $(gib "$plan_disk"), measured $(gib "$disk") ($(pct "$disk" "$plan_disk"))"
echo "test accuracy    $(field "$r" test_accuracy)"
echo "results: $out/beyond-ram.json $out/beyond-ram.svg"
