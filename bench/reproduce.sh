#!/bin/sh
# The main job (`make reproduce`): training sweeps, FLOP accounting, GSCN-sim, CPU benchmarks, then the
# report (tables) and the figures, all from records made on this machine. REPRODUCE.md explains each
# result and gives the commands one by one.
#
# usage: bench/reproduce.sh [BIN]
# environment (the Makefile passes them through):
#   SCALE=smoke|default|paper   smoke: the whole pipeline on tiny runs (minutes; numbers are not results)
#                               default: Fashion-MNIST, sized for under 45 minutes on 2 cores
#                               paper: the paper's CIFAR-10/100 and ImageNet settings (days to weeks)
#   JOBS=N                      training points run in parallel (threads divided between them; default 2)
#   CIFAR10=DIR CIFAR100=DIR IMAGENET=DIR   SCALE=paper: dataset directories (all three required,
#                               unless PAPER_SETS lists the ones to run, e.g. PAPER_SETS="cifar10")
# Records go to results/runs/SCALE/, tables and figures to results/ (default), results/smoke/ or
# results/paper-scale/. A record that is complete is never made again: a killed pipeline resumes.
set -eu
bin=${1:-build/resprop}
scale=${SCALE:-default}
jobs=${JOBS:-2}
start=$(date +%s)

case $scale in
smoke) out=results/smoke ;;
default) out=results ;;
paper) out=results/paper-scale ;;
*)
    echo "reproduce: SCALE must be smoke, default or paper (got '$scale')" >&2
    exit 2
    ;;
esac
root=results/runs/$scale

stage() { echo "== [$(($(date +%s) - start)) s] $*"; }

# SCALE=paper: every dataset directory is checked before anything runs.
paper_configs=""
if [ "$scale" = paper ]; then
    sets=${PAPER_SETS:-cifar10 cifar100 imagenet}
    bad=0
    for s in $(echo "$sets" | tr ',' ' '); do
        case $s in
        cifar10) dir=${CIFAR10:-} var=CIFAR10 ;;
        cifar100) dir=${CIFAR100:-} var=CIFAR100 ;;
        imagenet) dir=${IMAGENET:-} var=IMAGENET ;;
        *)
            echo "reproduce: PAPER_SETS: unknown dataset '$s' (expected cifar10, cifar100, imagenet)" >&2
            exit 2
            ;;
        esac
        if [ -z "$dir" ]; then
            echo "reproduce: SCALE=paper needs $var=DIR (the $s dataset directory; see REPRODUCE.md)," \
                "or PAPER_SETS listing only the datasets you have" >&2
            bad=1
        elif [ ! -d "$dir" ]; then
            echo "reproduce: $var=$dir: no such directory (expected the $s dataset files)" >&2
            bad=1
        fi
        paper_configs="$paper_configs $s:$dir"
    done
    [ "$bad" -eq 0 ] || exit 2
fi

mkdir -p "$root" "$out"
"$bin" version

stage "training sweep (SCALE=$scale, $jobs points in parallel)"
sweep_failed=0
if [ "$scale" = paper ]; then
    for spec in $paper_configs; do
        set=${spec%%:*} dir=${spec#*:}
        cfg=bench/configs/paper-$set.ini
        "$bin" sweep "$cfg" --runs-dir "$root" --data-dir="$dir" --estimate -j "$jobs"
        "$bin" sweep "$cfg" --runs-dir "$root" --data-dir="$dir" -j "$jobs" || sweep_failed=1
    done
else
    "$bin" sweep "bench/configs/$scale.ini" --runs-dir "$root" -j "$jobs" || sweep_failed=1
fi

stage "backward FLOP accounting at density 0.10 (RS 0.9): the paper's 10x and 2.7x"
mkdir -p "$root/flops"
for spec in "resnet18 3x224x224 256" "resnet34 3x224x224 256" "resnet50 3x224x224 256" "vgg16 3x224x224 256" \
    "resnet18 3x32x32 128" "resnet34 3x32x32 128" "vgg16 3x32x32 128" "resnet20 1x28x28 128"; do
    set -- $spec
    rec=$root/flops/$1-$(echo "$2" | cut -dx -f2)px-b$3.h5
    [ -f "$rec" ] || "$bin" flops --model "$1" --input "$2" --batch "$3" --density 0.1 --out "$rec" |
        grep -E '^(backward|overall)' | sed "s/^/$1 $2 batch $3: /"
done

stage "GSCN-sim (the harness's own accelerator model) against the GTX 1080 Ti model, and its sensitivity"
# ResNet-34 and VGG-16 at density 0.1 on gscn-iso-1080ti (the base points), then one change at a time.
sh bench/sim_sensitivity.sh "$bin" "$root/sim"

stage "CPU sparse backend against dense oneDNN (f32, 2 threads; timed alone, after the sweep)"
mkdir -p "$root/bench"
steps=5
[ "$scale" = smoke ] && steps=2
models="resnet20"
[ "$scale" = smoke ] || models="resnet20 resnet18"
for model in $models; do
    rec=$root/bench/backward-$model.h5
    [ -f "$rec" ] || "$bin" bench backward --model "$model" --batch 128 --density 0.05,0.1 --steps "$steps" \
        --out "$rec" | grep -E "^( +all conv|by class)"
    rec=$root/bench/step-$model-sparse.h5
    [ -f "$rec" ] || "$bin" bench step --model "$model" --batch 128 --scheme resprop --reuse 0.9 --scheme.margin=0 \
        --backend sparse --steps $((steps * 2)) --out "$rec" | tail -n 3
done

stage "report: tables and figures from the records under $root"
"$bin" report "$root" --out "$out"

stage "done in $(($(date +%s) - start)) s"
if [ "$sweep_failed" -ne 0 ]; then
    echo "reproduce: some training points failed (their logs are listed above); the tables mark what is missing" >&2
    exit 1
fi
