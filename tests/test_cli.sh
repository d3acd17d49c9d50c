#!/bin/sh
# CLI contract: --help on every command exits 0; bad input exits 2 with a message naming what was
# wrong; nothing is left under a record's final name. usage: tests/test_cli.sh path/to/resprop
bin=${1:-build/resprop}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
# expect CODE PATTERN -- command...: exit code CODE and stderr+stdout matching PATTERN
expect() {
    code=$1 pat=$2
    shift 3
    "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -eq "$code" ] && grep -q -- "$pat" "$tmp/out"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $* -> exit $got (want $code), output:"
        sed 's/^/    /' "$tmp/out" | head -5
    fi
}
for cmd in version model bench train eval export imagenet-convert schemes flops sim; do
    expect 0 "usage" -- "$bin" "$cmd" --help
done
expect 0 "commands" -- "$bin" help
expect 0 "density" -- "$bin" bench backward --help
expect 2 "model" -- "$bin" bench backward --density 0.1
expect 2 "density" -- "$bin" bench backward --model resnet20 --density 0,2
expect 2 "step or backward" -- "$bin" bench forward --model resnet20
expect 2 "backend" -- "$bin" bench step --model resnet20 --backend gpu
expect 2 "nope" -- "$bin" bench step --model lenet5 --input 1x28x28 --scheme nope --steps 1 --warmup 0
expect 0 "speedup" -- "$bin" bench step --model lenet5 --input 1x28x28 --batch 8 --scheme resprop --backend sparse \
    --scheme.warmup=none --steps 2 --warmup 2 --out "$tmp/bs.h5"
[ -f "$tmp/bs.h5" ] && [ ! -e "$tmp/bs.h5.part" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: bench step record"; }
expect 0 "all conv layers" -- "$bin" bench backward --model lenet5 --input 1x28x28 --batch 8 --steps 1 --warmup 0 \
    --density 0.5 --out "$tmp/bb.h5"
expect 0 "gathered-GEMM" -- "$bin" bench backward --model lenet5 --input 1x28x28 --batch 8 --steps 1 --warmup 0 \
    --scheme resprop-vec --density 0.5
expect 2 "backend" -- "$bin" train --backend gpu
expect 2 "breakeven-wide" -- "$bin" train --breakeven-wide 1.5
expect 2 "unknown command" -- "$bin" frobnicate
expect 2 "resnet9000" -- "$bin" model --model resnet9000 --input 3x32x32
expect 2 "CxHxW" -- "$bin" model --model resnet20 --input 3x32
expect 2 "lrr" -- "$bin" train --lrr 0.1
expect 2 "lr" -- "$bin" train --lr -1
expect 2 "epochs" -- "$bin" train --epochs 0
expect 2 "no-such" -- "$bin" train --dataset cifar10 --data-dir "$tmp/no-such" --out "$tmp/r.h5" --quiet
[ ! -e "$tmp/r.h5" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a record was left for bad input"; }
printf 'lr = 0.1\nbogus = 3\n' >"$tmp/bad.ini"
expect 2 "bad.ini:2" -- "$bin" train --config "$tmp/bad.ini"
expect 2 "missing.ini" -- "$bin" train --config "$tmp/missing.ini"
printf 'garbage' >"$tmp/x.ckpt.h5"
expect 2 "x.ckpt.h5" -- "$bin" eval --checkpoint "$tmp/x.ckpt.h5"
expect 2 "" -- "$bin" export "$tmp/none.h5" --out "$tmp/e"
expect 0 "speedup" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density 0.1 --preset gscn-small \
    --out "$tmp/s.h5"
[ -f "$tmp/s.h5" ] && [ ! -e "$tmp/s.h5.part" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: sim record"; }
expect 0 "clustered" -- "$bin" sim --model lenet5 --input 1x28x28 --batch 2 --density 0.2 --pattern clustered \
    --cluster 0.5 --preset gscn-small --mode detailed
expect 2 "gscn-iso-1080ti, gscn-large, gscn-small" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 \
    --density 0.1 --preset no-such-preset
expect 2 "density" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density 0 --preset gscn-small
expect 2 "density" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density 2 --preset gscn-small
expect 2 "preset" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density 0.1
expect 2 "pattern" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density 0.1 --preset gscn-small \
    --pattern striped
# resprop report / plot: a tiny runs directory with every record kind, a corrupt record, an ignored .part.
for cmd in report plot; do
    expect 0 "usage" -- "$bin" "$cmd" --help
done
rd=$tmp/report-runs
mkdir -p "$rd/sweep"
tiny="--dataset synthetic --model lenet5 --synthetic-shape 1x28x28 --synthetic-train 64 --synthetic-test 32 --batch 16 --epochs 2 --quiet"
expect 0 "record" -- "$bin" train $tiny --seed 1 --out "$rd/sweep/dense.h5"
expect 0 "record" -- "$bin" train $tiny --seed 1 --scheme resprop --reuse 0.9 --scheme.warmup=none --log-every 1 \
    --out "$rd/sweep/rp.h5"
expect 0 "record" -- "$bin" flops --model resnet18 --input 3x32x32 --batch 8 --density 0.1 --out "$rd/flops.h5"
expect 0 "speedup" -- "$bin" sim --model lenet5 --input 1x28x28 --batch 2 --density 0.1 --preset gscn-iso-1080ti \
    --out "$rd/sim.h5"
expect 0 "all conv layers" -- "$bin" bench backward --model lenet5 --input 1x28x28 --batch 4 --steps 1 --warmup 0 \
    --density 0.5 --out "$rd/bb.h5"
printf 'garbage' >"$rd/corrupt.h5"
printf 'garbage' >"$rd/sweep/old.h5.part"
expect 0 "corrupt.h5" -- "$bin" report "$rd" --out "$tmp/rep"
grep -q "ignored 1 .h5.part" "$tmp/out" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: report: .part count"; }
for f in tables.md tables.tex; do
    [ -s "$tmp/rep/$f" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: report: $f missing or empty"; }
done
for fig in fig1_accuracy_epoch fig2_accuracy_rs fig3_reuse_layers fig4_grad_similarity fig5_flops_layers \
    fig6_bench_backward fig7_gscn_speedup fig8_gscn_sensitivity; do
    for f in "figdata/$fig.dat" "figures/$fig.png" "figures/$fig.pdf"; do
        [ -s "$tmp/rep/$f" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: report: $f missing or empty"; }
    done
done
grep -q "no records of kind bench_step" "$tmp/rep/tables.md" && pass=$((pass + 1)) ||
    { fail=$((fail + 1)); echo "FAIL: report: missing bench_step records not named in tables.md"; }
expect 2 "no-such" -- "$bin" report "$tmp/no-such" --out "$tmp/rep2"
expect 2 "missing-claims.csv" -- "$bin" report "$rd" --out "$tmp/rep3" --claims "$tmp/missing-claims.csv"
expect 0 "accuracy.png" -- "$bin" plot "$rd/sweep/rp.h5" --out "$tmp/plot"
[ -s "$tmp/plot/reuse.pdf" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: plot: reuse.pdf"; }
expect 2 "not a training run" -- "$bin" plot "$rd/flops.h5" --out "$tmp/plot2"
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
