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
# GSCN-sim on training records (issue 6): backend gscn with saved masks, sim --masks / --density-from, overrides
expect 0 "backend gscn: latest simulated speedup" -- "$bin" train --dataset synthetic --model resnet20 --epochs 1 \
    --batch 32 --scheme resprop --scheme.warmup=none --backend gscn --gscn-every 2 --gscn-preset gscn-small \
    --save-masks 1 --threads 1 --out "$tmp/g.h5"
expect 0 "real masks of training step 2" -- "$bin" sim --masks "$tmp/g.h5" --preset gscn-small --out "$tmp/gm.h5"
[ -f "$tmp/gm.h5" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: sim --masks record"; }
expect 0 "densities of epoch 1" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density-from "$tmp/g.h5" \
    --preset gscn-small
expect 0 "with pes=8,dram-gbps=12.8" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density 0.1 \
    --preset gscn-small --arch.pes=8 --arch.dram-gbps=12.8
expect 2 "no-such.h5" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density-from "$tmp/no-such.h5" \
    --preset gscn-small
expect 2 "/layers" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density-from "$tmp/gm.h5" \
    --preset gscn-small
expect 2 "21 conv layers in the record, but model resnet18 has 20" -- "$bin" sim --model resnet18 --input 3x32x32 \
    --batch 4 --density-from "$tmp/g.h5" --preset gscn-small
expect 2 "no epoch 7" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density-from "$tmp/g.h5" --epoch 7 \
    --preset gscn-small
expect 2 "no masks of step 999" -- "$bin" sim --masks "$tmp/g.h5" --mask-step 999 --preset gscn-small
expect 2 "batch 32" -- "$bin" sim --masks "$tmp/g.h5" --batch 8 --preset gscn-small
expect 2 "one of --density" -- "$bin" sim --masks "$tmp/g.h5" --density 0.1 --preset gscn-small
expect 2 "did you mean 'pes'" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density 0.1 \
    --preset gscn-small --arch.pez=4
expect 2 "arch.pes" -- "$bin" sim --model resnet20 --input 3x32x32 --batch 4 --density 0.1 --preset gscn-small \
    --arch.pes=0
expect 2 "gscn-mode" -- "$bin" train --backend gscn --gscn-mode slow
expect 2 "needs --backend sparse or gscn" -- "$bin" train --dataset synthetic --model resnet20 --epochs 1 \
    --scheme resprop --save-masks 1 --out "$tmp/gd.h5" --quiet
expect 2 "no-such-preset" -- "$bin" train --dataset synthetic --model resnet20 --epochs 1 --scheme resprop \
    --backend gscn --gscn-preset no-such-preset --out "$tmp/gp.h5" --quiet
[ ! -e "$tmp/gd.h5" ] && [ ! -e "$tmp/gp.h5" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: gscn bad input left a record"; }
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
