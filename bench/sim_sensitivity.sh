#!/bin/sh
# GSCN-sim sensitivity (issue 6): ResNet-34, 3x224x224, batch 64, preset gscn-iso-1080ti, fast mode, seed 1,
# varying one thing at a time from the base point (density 0.1, uniform masks): PE count (half, double),
# DRAM bandwidth (half, double), density 0.2 and 0.05, clustered masks (whole rows, cluster 1); plus VGG-16
# at the base point. One `resprop sim --out` record per point, OUTDIR/MODEL-POINT.h5, named from the
# varied key (base, pes-128, dram-gbps-968, density-0.05, pattern-clustered, ...); a point whose record
# exists is not rerun (its speedup is read back from the record). Prints the table (point, speedup).
# The accelerator is GSCN-sim, the harness's own openly documented model, not the thesis's GSCN.
# usage: bench/sim_sensitivity.sh [BIN] [OUTDIR]   (defaults build/resprop, results/runs/sim)
set -eu
bin=${1:-build/resprop}
out=${2:-results/runs/sim}
[ -x "$bin" ] || { echo "sim_sensitivity: no executable $bin (make first)" >&2; exit 2; }
command -v h5dump >/dev/null || { echo "sim_sensitivity: h5dump not found (hdf5-tools)" >&2; exit 2; }
mkdir -p "$out"
preset=gscn-iso-1080ti
base_pes=256 base_bw=484 # gscn-iso-1080ti's pes and dram-gbps (accel/presets/gscn-iso-1080ti.ini)
table=$(mktemp)
trap 'rm -f "$table"' EXIT

# The speedup attribute of a sim record.
speedup_of() {
    h5dump -a speedup "$1" | sed -n 's/^ *(0): *\([0-9.eE+-]*\).*/\1/p' | head -n 1
}

# point MODEL NAME VARIED-TEXT ARGS...: one simulation
point() {
    model=$1 name=$2 what=$3
    shift 3
    rec=$out/$model-$name.h5
    if [ -f "$rec" ]; then
        echo "skip $model-$name (record $rec exists)" >&2
    else
        rm -f "$rec.part"
        echo "run  $model-$name: $what" >&2
        input=3x224x224
        "$bin" sim --model "$model" --input "$input" --batch 64 --preset "$preset" --mode fast --seed 1 "$@" \
            --out "$rec" >"$out/$model-$name.log" 2>&1 || { echo "FAILED $model-$name (see $out/$model-$name.log)" >&2; exit 1; }
    fi
    printf '%-10s %-22s %-34s %8.2fx\n' "$model" "$name" "$what" "$(speedup_of "$rec")" >>"$table"
}

point resnet34 base "density 0.1, uniform" --density 0.1
point resnet34 pes-$((base_pes / 2)) "PEs $((base_pes / 2)) (half)" --density 0.1 --arch.pes=$((base_pes / 2))
point resnet34 pes-$((base_pes * 2)) "PEs $((base_pes * 2)) (double)" --density 0.1 --arch.pes=$((base_pes * 2))
point resnet34 dram-gbps-$((base_bw / 2)) "DRAM $((base_bw / 2)) GB/s (half)" --density 0.1 --arch.dram-gbps=$((base_bw / 2))
point resnet34 dram-gbps-$((base_bw * 2)) "DRAM $((base_bw * 2)) GB/s (double)" --density 0.1 --arch.dram-gbps=$((base_bw * 2))
point resnet34 density-0.2 "density 0.2" --density 0.2
point resnet34 density-0.05 "density 0.05" --density 0.05
point resnet34 pattern-clustered "clustered masks (whole rows)" --density 0.1 --pattern clustered --cluster 1
point vgg16 base "density 0.1, uniform" --density 0.1

echo "GSCN-sim sensitivity: $preset (base $base_pes PEs, $base_bw GB/s), 3x224x224, batch 64, fast mode, seed 1"
echo "speedup = GPU model (GTX 1080 Ti, dense) conv backward / simulated conv backward; records in $out/"
printf '%-10s %-22s %-34s %9s\n' model point varied speedup
cat "$table"
echo "note: GSCN-sim is the harness's own openly documented accelerator model, not the thesis's (unpublished) GSCN"
