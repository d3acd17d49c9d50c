# Figure 2: final test accuracy vs reuse sparsity RS for every sparsity scheme (resprop, meprop,
# threshold, random, ...) and the dense accuracy as a flat line; mean over seeds, +-1 std bars.
load plotdir.'/common.gp'
do for [t=1:2] {
    eval term(t)
    set title title_text font ',14'
    set xlabel 'reuse sparsity RS (share of the output gradient not propagated; target density 1 - RS)'
    set ylabel 'final test top-1 accuracy (%)'
    set xrange [0:1]
    set key bottom left
    set label 101 footnote at screen 0.01, 0.06 left font ',8'
    plot for [i=0:nblocks-1] datafile index i using 1:2:3 with yerrorlines lw 2 title blocklabel(i)
    unset output
}
