#!/bin/sh
# test_subset: the checked-in data/fashion-mnist-subset/ is enough to train
# and evaluate without Debian's dataset package: its four gzip IDX files
# load (1,000 training and 200 test images), and a tiny bp and ff-mem run on
# it learn (accuracy well above the largest class's share of the test
# labels). Where it can, the test hides /usr/share/datasets in a private
# mount namespace, so a run that still reached the package would fail. It
# also checks that a test needing the full set skips (77) with the apt-get
# line when the package is missing.
# Usage: test_subset.sh PATH/TO/fftrain SUBSET_DIR TESTS_DIR
set -u
FFTRAIN=$1
SUBSET=$2
TESTS=$3
. "$(dirname "$0")/lib.sh"

for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
    t10k-labels-idx1-ubyte.gz; do
    check
    if [ -f "$SUBSET/$f" ]; then ok "$f present"; else fail "$SUBSET/$f missing"; fi
done
check
bytes=$(cat "$SUBSET"/*.gz | wc -c)
if [ "$bytes" -lt 1048576 ]; then ok "subset is $bytes bytes"; else fail "subset is $bytes bytes, expected under 1 MiB"; fi

# Chance on these 200 test labels: the share of the most frequent class.
top=$(gzip -dc "$SUBSET/t10k-labels-idx1-ubyte.gz" | tail -c +9 | od -An -tu1 -v | tr -s ' ' '\n' \
    | grep -v '^$' | sort | uniq -c | sort -rn | head -1 | awk '{print $1}')
chance=$(awk -v t="$top" 'BEGIN { printf "%.3f", t / 200 }')
echo "chance on the subset's test labels: $chance (largest class: $top of 200)"

# The runs, without the package: where /usr/share/datasets exists and this
# machine allows a mount namespace, under an empty tmpfs mounted over it;
# with FFSTREAM_DATA pointing nowhere either way.
hide_cmd='mount -t tmpfs none /usr/share/datasets && exec "$@"'
hide=""
if [ -d /usr/share/datasets ] && command -v unshare >/dev/null 2>&1 &&
    unshare -m sh -c "$hide_cmd" sh true >/dev/null 2>&1; then
    hide=yes
fi
run_hidden() { # run_hidden CMD...: the command with the Debian package out of sight
    if [ -n "$hide" ]; then
        FFSTREAM_DATA="$tmp/nowhere" unshare -m sh -c "$hide_cmd" sh "$@"
    else
        FFSTREAM_DATA="$tmp/nowhere" "$@"
    fi
}
if [ -n "$hide" ]; then echo "the runs below see an empty /usr/share/datasets"
elif [ -d /usr/share/datasets ]; then echo "no mount namespace here: the runs below get FFSTREAM_DATA=$tmp/nowhere and --data"
else echo "/usr/share/datasets does not exist: nothing to hide"; fi

# Measured on this subset: bp 76.0%, ff-mem (--recipe best) 78.0%.
for mode in bp ff-mem; do
    case $mode in
        bp) args="--mode bp --layers 2 --hidden 64 --batch 100 --epochs 3 --lr 0.01" ;;
        ff-mem) args="--mode ff-mem --recipe best --layers 2 --hidden 64 --epochs 3" ;;
    esac
    check
    # shellcheck disable=SC2086
    if ! run_hidden "$FFTRAIN" $args --threads 1 --data "$SUBSET" --quiet --json "$tmp/$mode.json" 2>"$tmp/err"; then
        fail "$mode on the subset failed: $(cat "$tmp/err")"
        continue
    fi
    acc=$(json_field "$tmp/$mode.json" test_accuracy)
    n_train=$(json_field "$tmp/$mode.json" train_samples)
    n_test=$(json_field "$tmp/$mode.json" test_samples)
    if [ "$n_train" = 1000 ] && [ "$n_test" = 200 ] &&
        awk -v a="$acc" -v c="$chance" 'BEGIN { exit !(a > 0.5 && a > 3 * c) }'; then
        ok "$mode on the subset: accuracy $acc (chance $chance), $n_train / $n_test images"
    else
        fail "$mode on the subset: accuracy $acc (chance $chance), $n_train / $n_test images"
    fi
done

# Without the package, fftrain's default directory is an error naming the
# package, and a test that needs the full set skips with the apt-get line.
if [ -n "$hide" ]; then
    expect_status 1 "install Debian's dataset-fashion-mnist" unshare -m sh -c "$hide_cmd" \
        sh env -u FFSTREAM_DATA "$FFTRAIN" --layers 1 --quiet
fi
check
FFSTREAM_DATA="$tmp/nowhere" FFSTREAM_REQUIRE_DATA=0 sh "$TESTS/test_stream.sh" "$FFTRAIN" >"$tmp/skip" 2>&1
rc=$?
if [ $rc -eq 77 ] && grep -q "apt-get install dataset-fashion-mnist" "$tmp/skip"; then
    ok "a full-set test skips: $(cat "$tmp/skip")"
else
    fail "a full-set test without data: exit $rc, $(cat "$tmp/skip")"
fi
test_summary test_subset
