#!/bin/sh
# test_profile: ffprofile on a tiny configuration writes JSON with every
# field (configuration, build and machine metadata, model, one record per
# run), records a failing run with its status and stderr tail and goes on,
# refuses bad arguments clearly (depths that would wrap or exceed the limit,
# repeated modes, a non-finite --lr, --out a directory, torch modes without
# PyTorch), prints a progress line with an ETA scaled by depth, resumes a
# sweep (keeping ok and OOM-killed cells, running failed ones, refusing
# another configuration), survives SIGINT and SIGTERM with a valid file, and
# under a cgroup limit (when one is writable) records ff-mem and bp as
# OOM-killed while ff-stream fits. The runs use the checked-in subset of
# Fashion-MNIST, so no dataset package is needed.
# Usage: test_profile.sh PATH/TO/ffprofile PATH/TO/fftrain SUBSET_DIR
set -u
FFPROFILE=$1
FFTRAIN=$2
. "$(dirname "$0")/lib.sh"
data=$3

expect_error() { # expect_error FRAGMENT ARGS...: exit 2 and the fragment on stderr
    want=$1
    shift
    checks=$((checks + 1))
    timeout 60 "$FFPROFILE" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$want" "$tmp/err"; then ok "$* -> $(cat "$tmp/err")"
    else fail "ffprofile $*: exit $rc, stderr: $(cat "$tmp/err")"; fi
}
expect_error "--mem-limit: " --mem-limit 12Q --out "$tmp/x.json"
expect_error "empty or invalid range" --layers 5:2:1 --out "$tmp/x.json"
expect_error "unknown mode 'ff-magic'" --modes ff-stream,ff-magic --out "$tmp/x.json"
expect_error "--out FILE is required" --layers 2
expect_error "unknown flag '--bogus'" --bogus 1 --out "$tmp/x.json"
# Depths: a step or end that would wrap around, a sweep longer than the
# limit (refused, not cut), a repeated depth.
expect_error "--layers 2:10:4294967295: step '4294967295' is not a whole number in 1..4096" \
    --layers 2:10:4294967295 --out "$tmp/x.json"
expect_error "--layers 2:4294967297:1: end" --layers 2:4294967297:1 --out "$tmp/x.json"
expect_error "--layers -1:3:1: start" --layers -1:3:1 --out "$tmp/x.json"
expect_error "--layers 1:4096:1: 4096 depths, at most 256 in one sweep" --layers 1:4096:1 --out "$tmp/x.json"
expect_error "--layers: 257 depths listed, at most 256" --layers "$(seq -s, 1 257)" --out "$tmp/x.json"
expect_error "--layers 2,7,2: 2 is listed twice" --layers 2,7,2 --out "$tmp/x.json"
# A repeated mode is refused: it once took the slot of the modes after it.
expect_error "--modes: 'ff-mem' is listed twice" --modes ff-mem,ff-mem --out "$tmp/x.json"
expect_error "--modes: 'ff-mem' is listed twice" --modes ff-mem,ff-mem,ff-mem,ff-mem,bp --out "$tmp/x.json"
expect_error "--lr: 'inf' is not a number in (0, 10]" --lr inf --out "$tmp/x.json"
expect_error "--lr: 'nan' is not a number in (0, 10]" --lr nan --out "$tmp/x.json"
expect_error "--lr: '1e999' is not a number" --lr 1e999 --out "$tmp/x.json"
expect_error "--out $tmp: is a directory, expected a results file" --out "$tmp" --data "$data"
expect_error "--out $tmp/none/x.json: the directory $tmp/none does not exist" --out "$tmp/none/x.json"
echo '{"kept": true}' >"$tmp/kept.json"
expect_error "--out $tmp/kept.json: exists; continue its sweep with --resume $tmp/kept.json, or pass --force" \
    --out "$tmp/kept.json" --data "$data"
check
grep -q kept "$tmp/kept.json" && ok "an existing --out is left as it was" || fail "--out without --force replaced the file"
expect_error "--resume $tmp/none.json: no such file" --resume "$tmp/none.json" --batch 100 --data "$data"
# The PyTorch modes, where python3 or torch is missing: refused before the
# sweep with the install line.
printf '#!/bin/sh\nexit 1\n' >"$tmp/python-without-torch"
chmod +x "$tmp/python-without-torch"
expect_error "cannot import; install it with: apt-get install python3-torch" --modes bp,torch-ff \
    --python "$tmp/python-without-torch" --out "$tmp/x.json" --data "$data"
expect_error "was not found; install it with: apt-get install python3-torch" --modes torch-bp \
    --python "$tmp/no-python3" --out "$tmp/x.json" --data "$data"
checks=$((checks + 1))
[ ! -e "$tmp/x.json" ] && ok "no results file written by a refused sweep" || fail "$tmp/x.json written"

if [ ! -f "$data/train-labels-idx1-ubyte.gz" ]; then
    fail "the checked-in subset is missing at $data"
    test_summary test_profile
    exit 1
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
    '"weights_adam_bytes":' '"fftrain":' '"status": *"ok"' '"parameters_bytes":' \
    '"seed": *"1"' '"threads":' '"commit":' '"build_type":' '"started":' '"finished":' \
    '"load_average_1m_start": *[0-9]' '"load_average_1m_end": *[0-9]' '"load_average_1m": *[0-9]' \
    '"cells_run": *6' '"earlier_sittings": *\[\]' '"complete": *true' '"interrupted": *false' \
    '"run_info":'; do
    checks=$((checks + 1))
    grep -q "$field" "$tmp/p.c" || fail "results lack $field"
done
checks=$((checks + 1))
commit=$(grep -o '"machine":{[^}]*' "$tmp/p.c" | grep -o '"commit":"[^"]*"' | cut -d'"' -f4)
if echo "$commit" | grep -Eq '^([0-9a-f]{40}(-dirty)?|unknown)$'; then ok "commit $commit"
else fail "machine.commit is '$commit'"; fi
checks=$((checks + 1))
n=$(grep -o '"status":' "$tmp/p.c" | wc -l)
[ "$n" -eq 6 ] && ok "6 run records" || fail "$n run records, expected 6"
checks=$((checks + 1))
u=$(grep -o '"user_seconds": *[0-9][0-9.e+-]*' "$tmp/p.c" | grep -vc '": *0$' || true)
s=$(grep -o '"system_seconds": *[0-9][0-9.e+-]*' "$tmp/p.c" | wc -l)
[ "$u" -eq 6 ] && [ "$s" -eq 6 ] && ok "user and system seconds in every record" ||
    fail "$u records with user_seconds > 0 and $s with system_seconds, expected 6 each"
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

# A stand-in trainer: logs "MODE LAYERS" to $FAKE_LOG, fails the cells named
# in $FAKE_FAIL ("bp-2 ff-mem-4"), sleeps in the cell named in
# $FAKE_SLEEP_CELL, and otherwise writes a result with an accuracy.
cat >"$tmp/fake" <<'SH'
#!/bin/sh
mode= layers= json=
while [ $# -gt 0 ]; do
    case $1 in
        --mode) mode=$2; shift ;;
        --layers) layers=$2; shift ;;
        --json) json=$2; shift ;;
    esac
    shift
done
echo "$mode $layers" >>"$FAKE_LOG"
case " ${FAKE_FAIL:-} " in *" $mode-$layers "*) echo "fake: failing $mode $layers" >&2; exit 3 ;; esac
[ "${FAKE_SLEEP_CELL:-}" = "$mode-$layers" ] && exec sleep 60
printf '{"test_accuracy": 0.5, "train_seconds": 0.01}\n' >"$json"
SH
chmod +x "$tmp/fake"
FAKE="--modes ff-mem,bp --layers 1,2,4 --hidden 32 --batch 100 --train-limit 500 --test-limit 100 --data $data --fftrain $tmp/fake"
export FAKE_LOG="$tmp/fake.log"

# --out a directory fails before any run.
rm -f "$FAKE_LOG"
expect_error "is a directory" $FAKE --out "$tmp"
checks=$((checks + 1))
[ ! -e "$FAKE_LOG" ] && ok "no run before the --out check" || fail "runs before the --out check: $(cat "$FAKE_LOG")"

# Progress: one line per cell on stderr with cells done and left, elapsed
# and ETA; nothing with --quiet.
rm -f "$FAKE_LOG"
"$FFPROFILE" $FAKE --out "$tmp/g.json" >"$tmp/g.out" 2>"$tmp/g.err"
checks=$((checks + 1))
if [ "$(grep -c 'left, elapsed .*, ETA ' "$tmp/g.err")" -eq 6 ] &&
    grep -q '^ffprofile: ff-mem, 1 layers: 0 done, 6 left, elapsed [0-9]*s, ETA unknown$' "$tmp/g.err" &&
    grep -q '^ffprofile: bp, 4 layers: 5 done, 1 left, elapsed' "$tmp/g.err" &&
    grep -q '^ffprofile: 6 of 6 cells done' "$tmp/g.err"; then
    ok "progress lines: $(head -2 "$tmp/g.err" | tr '\n' '|')"
else
    fail "progress lines: $(cat "$tmp/g.err")"
fi
checks=$((checks + 1))
if grep -q "accuracy" "$tmp/g.out" && grep -q "50.00%" "$tmp/g.out"; then ok "the table shows accuracy"
else fail "the table lacks accuracy: $(cat "$tmp/g.out")"; fi
"$FFPROFILE" $FAKE --quiet --force --out "$tmp/g.json" >"$tmp/g.out" 2>"$tmp/g.err"
checks=$((checks + 1))
[ ! -s "$tmp/g.err" ] && [ ! -s "$tmp/g.out" ] && ok "--quiet prints nothing" ||
    fail "--quiet printed: $(cat "$tmp/g.out" "$tmp/g.err")"

# Resume: a sweep with a failed cell, continued; only the failed cell runs.
rm -f "$FAKE_LOG"
FAKE_FAIL="bp-2" "$FFPROFILE" $FAKE --quiet --out "$tmp/r.json"
checks=$((checks + 1))
tr -d '\t\n' <"$tmp/r.json" >"$tmp/r.c"
if [ "$(grep -o '"status":"ok"' "$tmp/r.c" | wc -l)" -eq 5 ] && grep -q '"complete":false' "$tmp/r.c"; then
    ok "first sitting: 5 ok, 1 failed"
else
    fail "first sitting: $(cat "$tmp/r.json")"
fi
# Another configuration is refused, naming the first setting that differs.
expect_error "cannot resume: hidden (--hidden) was 32 in that sweep, now 64" \
    --modes ff-mem,bp --layers 1,2,4 --hidden 64 --batch 100 --train-limit 500 --test-limit 100 \
    --data "$data" --fftrain "$tmp/fake" --resume "$tmp/r.json"
expect_error "cannot resume: train_limit (--train-limit) was 500 in that sweep, now 400" \
    --modes ff-mem,bp --layers 1,2,4 --hidden 32 --batch 100 --train-limit 400 --test-limit 100 \
    --data "$data" --fftrain "$tmp/fake" --resume "$tmp/r.json"
expect_error "cannot resume: layers (--layers) was [1,2,4] in that sweep, now [1,2]" \
    --modes ff-mem,bp --layers 1,2 --hidden 32 --batch 100 --train-limit 500 --test-limit 100 \
    --data "$data" --fftrain "$tmp/fake" --resume "$tmp/r.json"
expect_error "--resume $tmp/r.json and --out $tmp/other.json name different files" $FAKE \
    --resume "$tmp/r.json" --out "$tmp/other.json"
# --resume FILE alone takes the sweep's options from FILE; a file that does
# not record them (an older ffprofile's) is refused with its command.
sed 's/"arguments":/"argumentz":/' "$tmp/r.json" >"$tmp/old.json"
expect_error "--resume $tmp/old.json: the file records no options" --resume "$tmp/old.json"
rm -f "$FAKE_LOG"
"$FFPROFILE" --resume "$tmp/r.json" >"$tmp/r.out" 2>"$tmp/r.err"
rc=$?
tr -d '\t\n' <"$tmp/r.json" >"$tmp/r.c"
checks=$((checks + 1))
order=$(sed 's/.*"runs"://' "$tmp/r.c" | grep -o '"mode":"[a-z-]*","layers":[0-9]*' | sed 's/"mode":"//; s/","layers":/-/' | tr '\n' ' ')
if [ $rc -eq 0 ] && [ "$(cat "$FAKE_LOG")" = "bp 2" ] && [ "$(grep -o '"status":"ok"' "$tmp/r.c" | wc -l)" -eq 6 ] &&
    [ "$order" = "ff-mem-1 bp-1 ff-mem-2 bp-2 ff-mem-4 bp-4 " ] && grep -q '"complete":true' "$tmp/r.c" &&
    grep -q '"earlier_sittings":\[{' "$tmp/r.c" && grep -q "resuming $tmp/r.json: 5 of 6 cells recorded" "$tmp/r.err"; then
    ok "resume ran only the failed cell (bp 2); records in sweep order: $order"
else
    fail "resume: exit $rc, ran '$(cat "$FAKE_LOG")', order '$order', stderr $(cat "$tmp/r.err")"
fi
# A complete sweep resumed runs nothing.
rm -f "$FAKE_LOG"
"$FFPROFILE" $FAKE --quiet --resume "$tmp/r.json"
rc=$?
checks=$((checks + 1))
[ $rc -eq 0 ] && [ ! -e "$FAKE_LOG" ] && ok "a complete sweep resumed runs nothing" || fail "ran: $(cat "$FAKE_LOG")"

# ETA: from the recorded cells' seconds per layer, by mode, else over all
# modes. Only ff-mem 1 (10 s) and bp 1 (3 s) are ok: left are ff-mem 2 and 4
# (10 s/layer: 60 s) and bp 2 and 4 (3 s/layer: 18 s), 78 s in all.
set_wall() { # set_wall FILE MODE LAYERS SECONDS: a record's wall_seconds
    awk -v M="$2" -v L="$3" -v V="$4" '
        /"mode":/ { m = $0; sub(/.*"mode":[ \t]*"/, "", m); sub(/".*/, "", m) }
        /"layers":[ \t]*[0-9]/ { l = $0; sub(/.*"layers":[ \t]*/, "", l); sub(/,.*/, "", l) }
        /"wall_seconds":/ && m == M && l == L { sub(/"wall_seconds":[ \t]*[-0-9.e+]*/, "\"wall_seconds\": " V) }
        { print }' "$1" >"$1.new" && mv "$1.new" "$1"
}
FAKE_FAIL="ff-mem-2 ff-mem-4 bp-2 bp-4" "$FFPROFILE" $FAKE --quiet --out "$tmp/e.json"
set_wall "$tmp/e.json" ff-mem 1 10
set_wall "$tmp/e.json" bp 1 3
FAKE_FAIL="ff-mem-2 ff-mem-4 bp-2 bp-4" "$FFPROFILE" $FAKE --resume "$tmp/e.json" >/dev/null 2>"$tmp/e.err"
checks=$((checks + 1))
if grep -q '^ffprofile: ff-mem, 2 layers: 2 done, 4 left, elapsed [0-9]*s, ETA 1m18s$' "$tmp/e.err" &&
    grep -q '^ffprofile: bp, 2 layers: 2 done, 1 failed, 3 left, elapsed [0-9]*s, ETA 58s$' "$tmp/e.err"; then
    ok "ETA by mode and depth: $(grep -m2 ETA "$tmp/e.err" | tr '\n' '|')"
else
    fail "ETA: $(cat "$tmp/e.err")"
fi
# No finished cell of bp: bp is predicted from every mode's rate (10 s/layer
# from ff-mem 1): ff-mem 2, 4 and bp 1, 2, 4 = 130 s.
FAKE_FAIL="ff-mem-2 ff-mem-4 bp-1 bp-2 bp-4" "$FFPROFILE" $FAKE --quiet --force --out "$tmp/e.json"
set_wall "$tmp/e.json" ff-mem 1 10
FAKE_FAIL="ff-mem-2 ff-mem-4 bp-1 bp-2 bp-4" "$FFPROFILE" $FAKE --resume "$tmp/e.json" >/dev/null 2>"$tmp/e.err"
checks=$((checks + 1))
if grep -q '^ffprofile: bp, 1 layers: 1 done, 5 left, elapsed [0-9]*s, ETA 2m10s$' "$tmp/e.err"; then
    ok "ETA falls back to every mode's rate: $(grep -m1 ETA "$tmp/e.err")"
else
    fail "ETA fallback: $(cat "$tmp/e.err")"
fi

# SIGINT and SIGTERM in the middle of a cell: the cell is not recorded, the
# file stays valid (a resume reads it strictly) and says interrupted, exit
# 130; the resume then runs the rest.
for sig in INT TERM; do
    rm -f "$FAKE_LOG" "$tmp/s.json"
    FAKE_SLEEP_CELL=bp-2 "$FFPROFILE" $FAKE --quiet --out "$tmp/s.json" &
    pid=$!
    n=0
    while ! grep -q "bp 2" "$FAKE_LOG" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    kill -$sig $pid
    wait $pid
    rc=$?
    tr -d '\t\n' <"$tmp/s.json" | sed 's/.*"runs"://' >"$tmp/s.c"
    checks=$((checks + 1))
    if [ $rc -eq 130 ] && grep -q '"interrupted":true' "$tmp/s.c" &&
        [ "$(grep -o '"status":"ok"' "$tmp/s.c" | wc -l)" -eq 3 ] && ! grep -q '"mode":"bp","layers":2' "$tmp/s.c" &&
        ! ls "$tmp" | grep -q '\.tmp\.'; then
        ok "SIG$sig: exit 130, 3 cells recorded, the interrupted one not, no temporary file left"
    else
        fail "SIG$sig: exit $rc, $(cat "$tmp/s.json")"
    fi
    rm -f "$FAKE_LOG"
    "$FFPROFILE" $FAKE --quiet --resume "$tmp/s.json"
    rc=$?
    checks=$((checks + 1))
    if [ $rc -eq 0 ] && [ "$(cat "$FAKE_LOG" | tr '\n' ' ')" = "bp 2 ff-mem 4 bp 4 " ]; then
        ok "resumed after SIG$sig: ran $(cat "$FAKE_LOG" | tr '\n' ' ')"
    else
        fail "resume after SIG$sig: exit $rc, ran $(cat "$FAKE_LOG" | tr '\n' ' ')"
    fi
done
unset FAKE_LOG

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
