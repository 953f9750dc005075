#!/bin/sh
# Shared set-up of tools/run.sh and tools/test.sh (sourced, not run):
# installs the Debian packages that are missing and builds into build/.
# FFSTREAM_BUILD (default build) and FFSTREAM_MESON_ARGS change the build.

FFSTREAM_PACKAGES="gcc libc6-dev libopenblas-dev liburing-dev libzstd-dev libcjson-dev zlib1g-dev libxxhash-dev meson ninja-build pkg-config dataset-fashion-mnist libopenmpi-dev openmpi-bin"

ffstream_missing_packages() {
    for p in $FFSTREAM_PACKAGES; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || printf '%s ' "$p"
    done
}

ffstream_install() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "setup: not a Debian system; install by hand: $FFSTREAM_PACKAGES" >&2
        return 0
    fi
    missing=$(ffstream_missing_packages)
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing packages: $missing" >&2
        echo "setup: run as root:  apt-get update && apt-get install -y $missing" >&2
        exit 1
    fi
    echo "setup: installing $missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || { echo "setup: apt-get update failed" >&2; exit 1; }
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >&2 || { echo "setup: apt-get install $missing failed" >&2; exit 1; }
}

# ffstream_build DIR [meson setup args...]: configure (once) and build.
ffstream_build() {
    dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        # shellcheck disable=SC2086
        meson setup "$dir" -Dwerror=true "$@" ${FFSTREAM_MESON_ARGS:-} >"$dir.setup.log" 2>&1 || {
            cat "$dir.setup.log" >&2
            echo "setup: meson setup $dir failed" >&2
            exit 1
        }
    fi
    ninja -C "$dir" >"$dir.build.log" 2>&1 || {
        cat "$dir.build.log" >&2
        echo "setup: build in $dir failed" >&2
        exit 1
    }
}

# json_number FILE KEY: the first number after "KEY": in a JSON file (the
# benchmark scripts read fftrain's results with it).
json_number() { tr -d ' \t\n' <"$1" | grep -o "\"$2\":[0-9.e+-]*" | head -1 | cut -d: -f2; }
