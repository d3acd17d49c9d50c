# Figure 4: similarity between a sample's output gradient and the stored one (R) of the previous
# iteration, per conv layer: cosine (top) and angle in degrees (bottom), with the paper's observation
# (# ref: line, from results/paper/claims.csv) as a dashed line.
load plotdir.'/common.gp'
do for [t=1:2] {
    eval term(t)
    set multiplot layout 2,1 margins 0.07,0.86,0.13,0.93 spacing 0.08,0.08 title title_text font ',14'
    set key outside right font ',8'
    set label 101 footnote at screen 0.01, 0.03 left font ',8'
    set xlabel ''
    set ylabel 'cos(R, G) (1)'
    plot for [i=0:nblocks-1] datafile index i using 1:2 with lines lw 1.5 title blocklabel(i)
    unset label 101
    set xlabel 'training step'
    set ylabel 'angle(R, G) (degrees)'
    set yrange [0:180]
    plot for [i=0:nblocks-1] datafile index i using 1:3 with lines lw 1.5 title blocklabel(i), \
         refval with lines dt 2 lw 2 lc 'black' title sprintf('paper: about %g degrees', refval)
    unset multiplot
    unset output
}
