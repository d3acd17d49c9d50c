# Figure 5: backward FLOP reduction (dense backward FLOPs / ReSprop's) per conv and fc layer, one line
# per flops record, with the paper's 10x (# ref: line, from results/paper/claims.csv).
load plotdir.'/common.gp'
do for [t=1:2] {
    eval term(t)
    eval intxtics
    set title title_text font ',14'
    set xlabel 'layer (conv and fc layers in model order)'
    set ylabel 'backward FLOP reduction (x)'
    set yrange [0:*]
    set key outside right font ',9'
    set label 101 footnote at screen 0.01, 0.06 left font ',8'
    plot for [i=0:nblocks-1] datafile index i using 1:3 with linespoints lw 1.5 title blocklabel(i), \
         refval with lines dt 2 lw 2 lc 'black' title sprintf('paper: %gx', refval)
    unset output
}
