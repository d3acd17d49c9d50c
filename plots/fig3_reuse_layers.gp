# Figure 3: achieved reuse (1 - density of the propagated gradient S) of every conv layer per logged
# step of one ReSprop run near RS 0.9 (named in the footnote).
load plotdir.'/common.gp'
do for [t=1:2] {
    eval term(t)
    set title title_text font ',14'
    set xlabel 'training step'
    set ylabel 'achieved reuse (%)'
    set yrange [0:100]
    set key outside right font ',8'
    set label 101 footnote at screen 0.01, 0.06 left font ',8'
    plot for [i=0:nblocks-1] datafile index i using 1:($2 * 100) with lines lw 1.5 title blocklabel(i)
    unset output
}
