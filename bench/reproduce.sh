#!/bin/sh
# The main job. Until the reproduce pipeline (sweeps, report, plots: a later issue) exists, this
# runs what the harness can already do for real: the model tables of the paper's networks, their
# backward FLOP accounting at RS 0.9, a dense training run on Fashion-MNIST with its HDF5 record and
# exported series, the dense step benchmark, and the CPU sparse backend against dense oneDNN (per
# conv layer and whole step, resnet20; the resnet18 figures of REPRODUCE.md take a few minutes more:
# the commands are there). The scheme comparison (bench/ablation.sh) takes about an hour and is not
# part of this default yet.
# A training point whose complete record exists is not run again (delete it to rerun).
set -eu
bin=${1:-build/resprop}
runs=results/runs
mkdir -p "$runs"
"$bin" version
for spec in "resnet18 3x224x224 1000" "resnet34 3x224x224 1000" "resnet50 3x224x224 1000" \
            "vgg16 3x224x224 1000" "resnet18 3x32x32 10" "resnet20 3x32x32 10"; do
    set -- $spec
    "$bin" model --model "$1" --input "$2" --classes "$3" | tail -n 1 | sed "s/^/$1 $2: /"
done
echo "== backward FLOP accounting at density 0.10 (RS 0.9), ImageNet shapes, batch 256 (paper: 10x, 2.7x)"
for model in resnet18 resnet34 resnet50 vgg16; do
    "$bin" flops --model "$model" --input 3x224x224 --batch 256 --density 0.1 | grep -E "^(backward|overall)" |
        sed "s/^/$model: /"
done
rec=$runs/reproduce-lenet5-fmnist.h5
echo "== dense training: lenet5 on Fashion-MNIST, 3 epochs, the defaults of resprop train"
if [ -f "$rec" ]; then
    echo "$rec exists (complete): not run again; its checkpoint evaluates to:"
    "$bin" eval --checkpoint "${rec%.h5}.ckpt.h5"
elif [ -f "${rec%.h5}.ckpt.h5" ]; then
    echo "resuming the interrupted run $rec.part from its checkpoint"
    "$bin" train --resume "$rec"
else
    rm -f "$rec.part"
    "$bin" train --model lenet5 --dataset fmnist --epochs 3 --log-every 100 --out "$rec"
fi
"$bin" export "$rec" --out results/export/reproduce-lenet5-fmnist
echo "== dense training step, resnet20 3x32x32 batch 128"
rm -f "$runs/bench-step-resnet20.h5"
"$bin" bench step --model resnet20 --input 3x32x32 --batch 128 --steps 10 --out "$runs/bench-step-resnet20.h5"
echo "== ReSprop on the CPU sparse backend against dense oneDNN, resnet20 3x32x32 batch 128 (f32, 2 threads)"
rm -f "$runs/bench-backward-resnet20.h5" "$runs/bench-step-resnet20-sparse.h5"
"$bin" bench backward --model resnet20 --batch 128 --density 0.05,0.1 --steps 5 \
    --out "$runs/bench-backward-resnet20.h5" | grep -E "^(density|model|sparse| +all conv|by class|break-even)"
"$bin" bench step --model resnet20 --batch 128 --scheme resprop --reuse 0.9 --scheme.margin=0 --backend sparse \
    --steps 10 --out "$runs/bench-step-resnet20-sparse.h5"
