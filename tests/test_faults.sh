#!/bin/sh
# test_faults: every write and every fsync of a small ff-stream run, with
# whole layers and with tiled ones, is made to fail in turn (EIO or ENOSPC, injected through the test hooks at the
# system-call table and at asynchronous write completions). Each failure
# must stop the run cleanly: exit status 1, a message naming the errno, no
# crash, no temporary file left; and --resume without the fault must then
# finish with layer files byte-identical to an uninterrupted run's.
# Usage: test_faults.sh PATH/TO/fftrain
set -u
FFTRAIN=$1
. "$(dirname "$0")/lib.sh"
need_data
need_hooks

# Two layers (one scored), two epochs, a few chunks per set: every kind of
# write happens (caches, checkpoints each epoch, scores, run.json, result).
FLAGS="--layers 2 --hidden 16 --epochs 2 --batch 100 --lr 0.01 --train-limit 300 --test-limit 60 --threads 1 --data $data --quiet"

# fault_every NAME FLAGS...: the reference run, the sites counted, then
# every write and fsync of the run made to fail in turn.
fault_every() {
    name=$1
    shift
    "$FFTRAIN" --mode ff-stream --run "$tmp/ref" $FLAGS "$@" || fail "$name: reference run"
    FFSTREAM_TEST_FAULT=count "$FFTRAIN" --mode ff-stream --run "$tmp/count" $FLAGS "$@" \
        2>"$tmp/count.err" || fail "$name: counting run"
    writes=$(sed -n 's/^fault sites: write=\([0-9]*\) fsync=\([0-9]*\)$/\1/p' "$tmp/count.err")
    fsyncs=$(sed -n 's/^fault sites: write=\([0-9]*\) fsync=\([0-9]*\)$/\2/p' "$tmp/count.err")
    if [ -z "$writes" ] || [ -z "$fsyncs" ] || [ "$writes" -lt 10 ] || [ "$fsyncs" -lt 5 ]; then
        fail "$name: could not count the fault sites: $(cat "$tmp/count.err")"
        return 1
    fi
    echo "$name: a run of this size makes $writes writes and $fsyncs fsyncs"
    bad=0
    for site in write fsync; do
        count=$writes
        [ $site = fsync ] && count=$fsyncs
        i=1
        while [ "$i" -le "$count" ]; do
            errno=EIO
            [ $((i % 2)) -eq 0 ] && errno=ENOSPC
            dir="$tmp/$site-$i"
            check
            FFSTREAM_TEST_FAULT=$site:$i:$errno "$FFTRAIN" --mode ff-stream --run "$dir" $FLAGS "$@" \
                >"$tmp/out" 2>"$tmp/err"
            rc=$?
            want="Input/output error"
            [ $errno = ENOSPC ] && want="No space left on device"
            if [ $rc -ne 1 ] || ! grep -q "$want" "$tmp/err"; then
                fail "$name: $site $i ($errno): exit $rc, expected 1 and '$want': $(cat "$tmp/err")"
                bad=$((bad + 1))
            elif find "$dir" -name '*.tmp.*' 2>/dev/null | grep -q .; then
                fail "$name: $site $i: temporary files left: $(find "$dir" -name '*.tmp.*')"
                bad=$((bad + 1))
            elif ! "$FFTRAIN" --mode ff-stream --run "$dir" --resume $FLAGS "$@" 2>"$tmp/resume.err"; then
                if grep -q "the run is finished" "$tmp/resume.err"; then
                    same_files "$dir" || { fail "$name: $site $i: finished run differs"; bad=$((bad + 1)); }
                else
                    fail "$name: $site $i: resume failed: $(cat "$tmp/resume.err")"
                    bad=$((bad + 1))
                fi
            elif ! same_files "$dir"; then
                fail "$name: $site $i: resumed run's layer files differ from the reference"
                bad=$((bad + 1))
            fi
            rm -rf "$dir"
            i=$((i + 1))
        done
    done
    check
    [ $bad -eq 0 ] && ok "$name: every one of $writes writes and $fsyncs fsyncs failed cleanly and resumed to identical files"
    rm -rf "$tmp/ref" "$tmp/count"
}

same_files() { # same_files DIR: every layer file of DIR equals the reference's
    for f in "$tmp/ref"/layers/*.ffl; do
        cmp -s "$f" "$1/layers/$(basename "$f")" || return 1
    done
    return 0
}

fault_every "whole layers"
# Tiled layers (3 tiles of 6, 6 and 4 units): the tile I/O thread's reads
# and writes, the pending file's headers, the commits.
fault_every "tiled layers" --tile-units 6
"$FFTRAIN" --mode ff-stream --run "$tmp/ref" $FLAGS || fail "reference run"

# A real full disk: a tmpfs of 1 MiB (where this process may mount one):
# the run stops with ENOSPC naming the file, keeps what it wrote, and
# finishes once the filesystem is grown.
small="$tmp/small"
mkdir -p "$small"
if mount -t tmpfs -o size=1m tmpfs "$small" 2>/dev/null; then
    check
    "$FFTRAIN" --mode ff-stream --run "$small/run" $FLAGS --ignore-disk-space >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "No space left on device" "$tmp/err" && [ -f "$small/run/run.json" ]; then
        ok "full tmpfs: $(head -1 "$tmp/err")"
        check
        if mount -o remount,size=64m "$small" && "$FFTRAIN" --mode ff-stream --run "$small/run" --resume $FLAGS \
            && same_files "$small/run"; then
            ok "after the filesystem grew, the run resumed to identical files"
        else
            fail "resume after growing the tmpfs"
        fi
    else
        fail "full tmpfs: exit $rc, $(cat "$tmp/err")"
    fi
    umount "$small"
else
    echo "skip: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN): the full-disk case is covered by the injected ENOSPC above"
fi
test_summary test_faults
