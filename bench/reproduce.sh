#!/bin/sh
# The main job. Until the reproduce pipeline (sweeps, report, plots: a later issue) exists, this
# runs what the harness can already do for real: the model tables of the paper's networks, a short
# dense training on Fashion-MNIST, and the dense step benchmark.
set -eu
bin=${1:-build/resprop}
"$bin" version
for spec in "resnet18 3x224x224 1000" "resnet34 3x224x224 1000" "resnet50 3x224x224 1000" \
            "vgg16 3x224x224 1000" "resnet18 3x32x32 10" "resnet20 3x32x32 10"; do
    set -- $spec
    "$bin" model --model "$1" --input "$2" --classes "$3" | tail -n 1 | sed "s/^/$1 $2: /"
done
echo "== short dense training: lenet5 on Fashion-MNIST, 2 epochs"
"$bin" train --model lenet5 --dataset fmnist --epochs 2 --batch 128 --lr 0.05 --schedule cosine --log-every 100
echo "== dense training step, resnet20 3x32x32 batch 128"
"$bin" bench step --model resnet20 --input 3x32x32 --batch 128 --steps 10
