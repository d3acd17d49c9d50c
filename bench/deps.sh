#!/bin/sh
# Installs the Debian packages the harness needs, skipping those already present.
# As root it runs apt-get; otherwise it prints the exact command and stops with an error.
PKGS="gcc make pkg-config libdnnl-dev libopenblas-dev libhdf5-dev hdf5-tools gnuplot-nox libcmocka-dev \
zlib1g-dev libjpeg62-turbo-dev libinih-dev dataset-fashion-mnist"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing || {
        echo "deps: apt-get failed installing:$missing" >&2; exit 1; }
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run as root:  apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
