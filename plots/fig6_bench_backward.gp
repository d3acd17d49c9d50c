# Figure 6: measured backward time (bwd-data + bwd-weights, median) per conv layer on the CPU: dense
# oneDNN f32 vs ReSprop on the sparse backend at each density of the bench_backward record.
load plotdir.'/common.gp'
do for [t=1:2] {
    eval term(t)
    eval intxtics
    set title title_text font ',14'
    set xlabel 'conv layer (model order)'
    set ylabel 'backward time per layer (ms, log scale)'
    set logscale y
    set key top right
    set label 101 footnote at screen 0.01, 0.06 left font ',8'
    plot for [i=0:nblocks-1] datafile index i using 1:3 with linespoints lw 2 title blocklabel(i)
    unset output
}
