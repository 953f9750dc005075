#!/bin/sh
# test_profile: ffprofile on a tiny configuration writes JSON with every
# field (configuration, machine, model, one record per run), records a failing
# run with its status and stderr tail and goes on, refuses bad arguments
# clearly, and under a cgroup limit (when one is writable) records ff-mem and
# bp as OOM-killed while ff-stream fits.
# Usage: test_profile.sh PATH/TO/ffprofile PATH/TO/fftrain
set -u
FFPROFILE=$1
FFTRAIN=$2
. "$(dirname "$0")/lib.sh"

expect_error() { # expect_error FRAGMENT ARGS...: exit 2 and the fragment on stderr
    want=$1
    shift
    checks=$((checks + 1))
    "$FFPROFILE" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$want" "$tmp/err"; then ok "$* -> $(cat "$tmp/err")"
    else fail "ffprofile $*: exit $rc, stderr: $(cat "$tmp/err")"; fi
}
expect_error "--mem-limit: " --mem-limit 12Q --out "$tmp/x.json"
expect_error "empty or invalid range" --layers 5:2:1 --out "$tmp/x.json"
expect_error "unknown mode 'ff-magic'" --modes ff-stream,ff-magic --out "$tmp/x.json"
expect_error "--out FILE is required" --layers 2
expect_error "unknown flag '--bogus'" --bogus 1 --out "$tmp/x.json"

if [ ! -f "$data/train-labels-idx1-ubyte.gz" ]; then
    echo "dataset not found at $data: runs skipped"
    [ "${FFSTREAM_REQUIRE_DATA:-0}" = 1 ] && exit 1
    echo "test_profile: $checks checks, $failures failed"
    [ "$failures" -eq 0 ] || exit 1
    exit 77
fi
TINY="--hidden 32 --batch 100 --epochs 1 --train-limit 500 --test-limit 100 --data $data --quiet"

# A real sweep: three modes, two depths.
checks=$((checks + 1))
if "$FFPROFILE" --modes ff-stream,ff-mem,bp --layers 1,2 $TINY --fftrain "$FFTRAIN" --out "$tmp/p.json"; then
    ok "sweep ran"
else
    fail "sweep exited $?"
fi
# cJSON separates keys and values with a tab: compare on a copy without them.
tr -d '\t\n' <"$tmp/p.json" >"$tmp/p.c"
for field in '"format": *"ffstream-profile"' '"config":' '"modes":' '"hidden": *32' '"machine":' \
    '"cpu":' '"cores":' '"memory_bytes":' '"kernel":' '"blas":' '"blas_threads":' '"model":' \
    '"runs":' '"peak_rss_bytes":' '"cgroup_peak_bytes":' '"wall_seconds":' '"test_accuracy":' \
    '"weights_adam_bytes":' '"fftrain":' '"status": *"ok"' '"parameters_bytes":'; do
    checks=$((checks + 1))
    grep -q "$field" "$tmp/p.c" || fail "results lack $field"
done
checks=$((checks + 1))
n=$(grep -o '"status":' "$tmp/p.c" | wc -l)
[ "$n" -eq 6 ] && ok "6 run records" || fail "$n run records, expected 6"
checks=$((checks + 1))
for m in ff-stream ff-mem bp; do
    grep -q "\"mode\": *\"$m\"" "$tmp/p.c" || fail "no record of $m"
done
ok "every mode recorded"

# A trainer that fails: recorded as failed with its stderr, the sweep goes on.
cat >"$tmp/broken" <<'SH'
#!/bin/sh
echo "broken trainer: refusing to train" >&2
exit 3
SH
chmod +x "$tmp/broken"
"$FFPROFILE" --modes ff-mem,bp --layers 1,2 $TINY --fftrain "$tmp/broken" --out "$tmp/f.json"
tr -d '\t\n' <"$tmp/f.json" >"$tmp/f.c"
checks=$((checks + 1))
if [ "$(grep -o '"status":"failed"' "$tmp/f.c" | wc -l)" -eq 4 ] && grep -q 'refusing to train' "$tmp/f.c" \
    && grep -q '"exit_status":3' "$tmp/f.c"; then
    ok "failing runs recorded (4 of 4, exit 3, stderr tail kept)"
else
    fail "failing runs not recorded: $(cat "$tmp/f.json")"
fi

# Under a memory limit: ff-mem and bp need the whole network, ff-stream one
# layer. A sanitizer build's shadow memory needs a larger limit (and then a
# deeper network to exceed it).
limit=128M layers=12 limit_bytes=134217728
if [ "${FFSTREAM_SANITIZED:-0}" = 1 ]; then limit=384M layers=32 limit_bytes=402653184; fi
"$FFPROFILE" --modes ff-stream,ff-mem,bp --layers $layers --hidden 1024 --batch 200 --epochs 1 \
    --train-limit 500 --test-limit 100 --data "$data" --mem-limit $limit --quiet \
    --fftrain "$FFTRAIN" --out "$tmp/c.json" 2>"$tmp/c.err"
rc=$?
checks=$((checks + 1))
if [ $rc -eq 1 ] && grep -q "writable memory cgroup" "$tmp/c.err"; then
    echo "skip: $(cat "$tmp/c.err")"
    [ "${FFSTREAM_REQUIRE_CGROUP:-0}" = 1 ] && fail "cgroup required"
else
    ffs=$(tr -d '\n\t ' <"$tmp/c.json" | grep -o "\"mode\":\"ff-stream\",\"layers\":$layers,\"status\":\"[a-z-]*\"")
    ffm=$(tr -d '\n\t ' <"$tmp/c.json" | grep -o "\"mode\":\"ff-mem\",\"layers\":$layers,\"status\":\"[a-z-]*\"")
    bp=$(tr -d '\n\t ' <"$tmp/c.json" | grep -o "\"mode\":\"bp\",\"layers\":$layers,\"status\":\"[a-z-]*\"")
    if echo "$ffs" | grep -q '"ok"' && echo "$ffm" | grep -q 'oom-killed' && echo "$bp" | grep -q 'oom-killed' \
        && tr -d '\t\n' <"$tmp/c.json" | grep -q "\"mem_limit_bytes\":$limit_bytes"; then
        ok "under $limit: ff-stream ok, ff-mem and bp OOM-killed at $layers layers"
    else
        fail "under $limit: $ffs / $ffm / $bp"
    fi
fi
test_summary test_profile
