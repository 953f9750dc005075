#!/bin/sh
# test_torch: ffprofile's PyTorch modes. A 2-layer, hidden-64 torch-ff and
# torch-bp cell on the checked-in 1,000-image subset each run as their own
# python3 process (tools/reference/ff_torch.py) and are measured like
# fftrain's cells: status ok, peak RSS from the child's rusage, wall time
# above the script's own training time, the script's JSON kept with the
# accuracy and sample counts; torch-bp learns. ffplot then draws both
# dash-dotted beside ffstream's modes. Skipped (77) where python3 cannot
# import torch, with the install line.
# Usage: test_torch.sh PATH/TO/ffprofile PATH/TO/ffplot SUBSET_DIR
set -u
FFPROFILE=$1
FFPLOT=$2
SUBSET=$3
. "$(dirname "$0")/lib.sh"

"$FFPROFILE" --modes bp,torch-ff,torch-bp --layers 2 --hidden 64 --batch 100 --epochs 2 --lr 0.01 \
    --train-limit 1000 --test-limit 200 --threads 2 --data "$SUBSET" --quiet \
    --out "$tmp/t.json" 2>"$tmp/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "apt-get install python3-torch" "$tmp/err"; then
    echo "skip: $(cat "$tmp/err")"
    exit 77
fi
check
[ $rc -eq 0 ] && ok "torch sweep ran" || fail "torch sweep exited $rc: $(cat "$tmp/err")"

# The results through the python3 that ffprofile found (it has json).
python=/usr/bin/python3
[ -x "$python" ] || python=python3
check
if "$python" - "$tmp/t.json" >"$tmp/py" 2>&1 <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
runs = {r["mode"]: r for r in doc["runs"]}
assert sorted(runs) == ["bp", "torch-bp", "torch-ff"], sorted(runs)
for mode in ("torch-ff", "torch-bp"):
    r = runs[mode]
    t = r["torch"]
    assert r["status"] == "ok" and r["layers"] == 2, r
    assert r["peak_rss_bytes"] > 50 << 20, r["peak_rss_bytes"]  # python + torch
    assert r["wall_seconds"] > t["train_seconds"] > 0, (r["wall_seconds"], t["train_seconds"])
    assert 0 <= r["test_accuracy"] <= 1 and r["test_accuracy"] == t["test_accuracy"], r
    assert t["mode"] == mode and t["hidden"] == 64 and t["layers"] == 2 and t["batch"] == 100, t
    assert t["train_samples"] == 1000 and t["test_samples"] == 200 and t["threads"] == 2, t
    assert t["seed"] == "1" and abs(t["lr"] - 0.01) < 1e-12 and t["epochs"] == 2, t
    if mode == "torch-bp":  # the same network as bp's
        assert r["weights_adam_bytes"] == runs["bp"]["weights_adam_bytes"], r
    print(f"{mode}: accuracy {r['test_accuracy']:.3f}, peak RSS {r['peak_rss_bytes'] >> 20} MiB, "
          f"wall {r['wall_seconds']:.1f} s, train {t['train_seconds']:.2f} s")
# Measured 64-70% for torch-bp on this subset; chance is 13.5%.
assert runs["torch-bp"]["test_accuracy"] > 0.5, runs["torch-bp"]["test_accuracy"]
# The memory model covers ffstream's trainers only.
assert {m["mode"] for m in doc["model"]} == {"bp"}, doc["model"]
PY
then
    ok "torch cells measured: $(tr '\n' ';' <"$tmp/py")"
else
    fail "torch records: $(cat "$tmp/py")"
fi

check
if "$FFPLOT" "$tmp/t.json" -o "$tmp/t.svg" && grep -q '>torch-ff<' "$tmp/t.svg" &&
    grep -q '>torch-bp<' "$tmp/t.svg" && grep -q 'stroke-dasharray="9,3,2,3"' "$tmp/t.svg"; then
    ok "ffplot draws the torch modes dash-dotted"
else
    fail "ffplot on the torch results"
fi
test_summary test_torch
