#!/bin/sh
# The scheme comparison of issue 4 on Fashion-MNIST (until `resprop sweep` exists): resnet20, batch 128,
# SGD momentum 0.9 Nesterov, weight decay 5e-4, one-cycle lr 0.1, pad-2 crop + flip, ReSprop warm-up
# fraction:0.25, seed 1 for every run. Points: dense; resprop at RS 0.5, 0.8, 0.9; the batch-mean
# variant at 0.9; meprop, threshold and random at 0.9; the structured resprop-vec at 0.9. A point whose complete record exists is
# skipped; an interrupted one resumes from its checkpoint. Prints the table (bench/ablation_table.sh).
# usage: bench/ablation.sh [EPOCHS] [JOBS]   (JOBS points in parallel, the 2 threads divided between them)
set -eu
bin=${RESPROP:-build/resprop}
if [ "${1:-}" = --point ]; then # one point: --point EPOCHS THREADS SCHEME:RS:SAMPLE
    epochs=$2 threads=$3 spec=$4
    scheme=${spec%%:*} rest=${spec#*:}
    rs=${rest%%:*} sample=${rest#*:}
    dir=results/runs/ablation-e$epochs
    name=$scheme-rs$rs
    [ "$sample" = batchmean ] && name=$name-batchmean
    [ "$scheme" = dense ] && name=dense
    rec=$dir/$name.h5
    if [ -f "$rec" ]; then echo "skip $name (complete record exists)"; exit 0; fi
    extra=""
    case $scheme in resprop | resprop-vec) extra="--scheme.warmup=fraction:0.25 --scheme.sample=$sample" ;; esac
    echo "start $name"
    if [ -f "$dir/$name.ckpt.h5" ]; then
        "$bin" train --resume "$rec" --quiet >"$dir/$name.log" 2>&1 || { echo "FAILED $name (see $dir/$name.log)"; exit 0; }
    else
        rm -f "$rec.part"
        # shellcheck disable=SC2086
        "$bin" train --dataset fmnist --model resnet20 --epochs "$epochs" --batch 128 --lr 0.1 --schedule onecycle \
            --nesterov --weight-decay 5e-4 --seed 1 --threads "$threads" --scheme "$scheme" --reuse "$rs" $extra \
            --out "$rec" >"$dir/$name.log" 2>&1 || { echo "FAILED $name (see $dir/$name.log)"; exit 0; }
    fi
    echo "done $name: $(grep '^done:' "$dir/$name.log" || true)"
    exit 0
fi
epochs=${1:-5}
jobs=${2:-2}
threads=$((2 / jobs))
[ "$threads" -ge 1 ] || threads=1
dir=results/runs/ablation-e$epochs
mkdir -p "$dir"
printf '%s\n' dense:0.9:random resprop:0.5:random resprop:0.8:random resprop:0.9:random resprop:0.9:batchmean \
    meprop:0.9:random threshold:0.9:random random:0.9:random resprop-vec:0.9:random |
    xargs -P "$jobs" -n 1 sh "$0" --point "$epochs" "$threads"
sh "$(dirname "$0")/ablation_table.sh" "$dir"
