#!/bin/sh
# Interleaved comparison of the dense training step against the PyTorch peer (Debian python3-torch,
# same oneDNN underneath): ROUNDS alternations of `resprop bench step` and ../shared/peer/torch_step.py
# (or $PEER), each under /usr/bin/time for the peak resident size. Prints every run and the ratios of
# the medians (throughput ours/peer, peak RSS ours/peer).
# usage: bench/peer_compare.sh MODEL [BATCH] [ROUNDS] [STEPS]
set -eu
model=${1:?usage: bench/peer_compare.sh MODEL [BATCH] [ROUNDS] [STEPS]}
batch=${2:-128}; rounds=${3:-3}; steps=${4:-10}
bin=${RESPROP:-build/resprop}
peer=${PEER:-$(dirname "$0")/../../shared/peer/torch_step.py}
[ -f "$peer" ] || { echo "peer_compare: peer script $peer not found (set PEER=...)" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || {
    echo "peer_compare: /usr/bin/python3 cannot import torch: apt-get install python3-torch" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$rounds"); do
    /usr/bin/time -f "%M" -o "$tmp/rss" "$bin" bench step --model "$model" --batch "$batch" --steps "$steps" \
        --threads 2 >"$tmp/out" 2>/dev/null
    ours=$(sed -n 's/.*img_per_s=\([0-9.]*\).*/\1/p' "$tmp/out"); ours_rss=$(cat "$tmp/rss")
    /usr/bin/time -f "%M" -o "$tmp/rss" /usr/bin/python3 "$peer" "$model" "$batch" "$steps" >"$tmp/out" 2>/dev/null
    theirs=$(sed -n 's/.*img_per_s=\([0-9.]*\).*/\1/p' "$tmp/out"); theirs_rss=$(cat "$tmp/rss")
    echo "round $r: resprop $ours img/s ($((ours_rss / 1024)) MB)   pytorch $theirs img/s ($((theirs_rss / 1024)) MB)"
    echo "$ours $theirs $ours_rss $theirs_rss" >>"$tmp/all"
done
awk '{o[NR]=$1; t[NR]=$2; orss[NR]=$3; trss[NR]=$4}
     function med(a, n,  i, j, x) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
                                   return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
     END { n = NR; mo = med(o, n); mt = med(t, n); mor = med(orss, n); mtr = med(trss, n)
           printf "median: resprop %.1f img/s, pytorch %.1f img/s, throughput ratio %.2fx; peak RSS %.0f MB vs %.0f MB, ratio %.2f\n",
                  mo, mt, mo / mt, mor / 1024, mtr / 1024, mor / mtr }' "$tmp/all"
