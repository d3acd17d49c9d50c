#!/bin/sh
# Table of an ablation directory's complete records: final test accuracy, delta to dense, achieved
# reuse (whole run and last epoch), backward FLOP reduction of the last epoch.
# usage: bench/ablation_table.sh DIR
set -eu
dir=${1:?usage: bench/ablation_table.sh DIR}
bin=${RESPROP:-build/resprop}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dense_acc=""
[ -f "$dir/dense.h5" ] && "$bin" export "$dir/dense.h5" --out "$tmp/dense" >/dev/null 2>&1 &&
    dense_acc=$(awk '!/^#/ {a = $5} END {print a}' "$tmp/dense/epoch.dat")
printf '%-26s %6s %9s %9s %12s %12s %10s\n' run epochs test_acc delta reuse_run reuse_last bwd_red
for rec in "$dir"/*.h5; do
    [ -f "$rec" ] || continue
    case "$rec" in *.ckpt.h5) continue ;; esac
    name=$(basename "$rec" .h5)
    "$bin" export "$rec" --out "$tmp/$name" >/dev/null 2>&1 || continue
    awk -v name="$name" -v dense="$dense_acc" '
        FNR == 1 { f++ }
        /^#/ { next }
        f == 1 { ep = $1; acc = $5 }
        f == 2 { n++; dsum += $2; dlast = $2; red = $6 }
        END {
            delta = dense == "" ? "n/a" : sprintf("%+.2f", 100 * (acc - dense))
            printf "%-26s %6d %8.2f%% %9s %11.3f %12.3f %9.2fx\n", name, ep, 100 * acc, delta, 1 - dsum / n, 1 - dlast, red
        }' "$tmp/$name/epoch.dat" "$tmp/$name/network.dat"
done
