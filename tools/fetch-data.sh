#!/bin/sh
# tools/fetch-data.sh: puts the data where the programs look for it (see
# data/README.md). Nothing is downloaded but Debian's package.
#   tools/fetch-data.sh            links Debian's dataset-fashion-mnist files
#                                  into data/fashion-mnist/ (installs the
#                                  package with apt when root and missing;
#                                  otherwise prints the apt-get line)
#   tools/fetch-data.sh --subset   also regenerates data/fashion-mnist-subset/
#                                  from the package: the first 1,000 training
#                                  and 200 test images and labels, gzip IDX
# SRC=DIR reads another MNIST-format directory instead of the package's
# (raw or .gz files, '-' or '.' before idx).
set -eu
cd "$(dirname "$0")/.."

package=dataset-fashion-mnist
src=${SRC:-/usr/share/datasets/fashion-mnist}
train_n=1000
test_n=200

# The file of NAME (e.g. train-images-idx3-ubyte) in $src under any of the
# four spellings, or nothing.
find_idx() {
    dotted=$(echo "$1" | sed 's/-idx/.idx/')
    for f in "$src/$1.gz" "$src/$1" "$src/$dotted.gz" "$src/$dotted"; do
        if [ -f "$f" ]; then
            echo "$f"
            return 0
        fi
    done
    return 1
}

have_all() {
    for n in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
        t10k-labels-idx1-ubyte; do
        find_idx "$n" >/dev/null || return 1
    done
}

if ! have_all; then
    if [ -n "${SRC:-}" ]; then
        echo "fetch-data: $src lacks the four MNIST-format IDX files" >&2
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "fetch-data: $src not found; as root run:  apt-get update && apt-get install -y $package" >&2
        exit 1
    fi
    echo "fetch-data: installing $package" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2
    have_all || { echo "fetch-data: $package installed but $src still lacks the files" >&2; exit 1; }
fi

# (a) links, so that --data data/fashion-mnist works.
mkdir -p data/fashion-mnist
for n in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
    t10k-labels-idx1-ubyte; do
    f=$(find_idx "$n")
    case "$f" in *.gz) link="data/fashion-mnist/$n.gz" ;; *) link="data/fashion-mnist/$n" ;; esac
    rm -f "data/fashion-mnist/$n" "data/fashion-mnist/$n.gz"
    ln -s "$f" "$link"
done
echo "data/fashion-mnist/ -> $src (use --data data/fashion-mnist)"

[ "${1:-}" = "--subset" ] || exit 0

# (b) the subset. An IDX file is a big-endian header (magic, then one 32-bit
# size per dimension) and the bytes; the subset keeps the header with the
# count replaced and the first N records.
be32() { # the 4 big-endian bytes of $1
    printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
        $(($1 >> 8 & 255)) $(($1 & 255)))"
}
cat_idx() { case "$1" in *.gz) gzip -dc "$1" ;; *) cat "$1" ;; esac; }
# cut FILE N HEADER_BYTES RECORD_BYTES OUT
cut_idx() {
    {
        cat_idx "$1" | head -c 4
        be32 "$2"
        cat_idx "$1" | head -c "$3" | tail -c +9
        cat_idx "$1" | tail -c +$(($3 + 1)) | head -c $(($2 * $4))
    } | gzip -9 -n >"$5.tmp"
    mv "$5.tmp" "$5"
}
out=data/fashion-mnist-subset
mkdir -p "$out"
cut_idx "$(find_idx train-images-idx3-ubyte)" $train_n 16 784 "$out/train-images-idx3-ubyte.gz"
cut_idx "$(find_idx train-labels-idx1-ubyte)" $train_n 8 1 "$out/train-labels-idx1-ubyte.gz"
cut_idx "$(find_idx t10k-images-idx3-ubyte)" $test_n 16 784 "$out/t10k-images-idx3-ubyte.gz"
cut_idx "$(find_idx t10k-labels-idx1-ubyte)" $test_n 8 1 "$out/t10k-labels-idx1-ubyte.gz"
echo "$out/: $train_n training and $test_n test images from $src"
