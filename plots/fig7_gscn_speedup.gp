# Figure 7: GSCN-sim backward speedup over the GTX 1080 Ti model, per conv layer (left) and per
# network next to the paper's 8.0x / 7.2x (right; the last data block).
load plotdir.'/common.gp'
netmax = system(sprintf("awk '!/^#/ && NF == 4 { if ($2 > m) m = $2; if ($3 > m) m = $3 } END { print m + 0 }' '%s'", datafile)) + 0
do for [t=1:2] {
    eval term(t)
    eval intxtics
    set multiplot layout 1,2 margins 0.06,0.98,0.14,0.92 spacing 0.08,0.08 title title_text font ',14'
    set label 101 footnote at screen 0.01, 0.06 left font ',8'
    set xlabel 'conv layer (model order)'
    set ylabel 'speedup over the GPU model (x)'
    set key top right
    set yrange [0:*]
    plot for [i=0:nblocks-2] datafile index i using 1:2 with linespoints lw 2 title blocklabel(i)
    unset label 101
    set xlabel 'network'
    set yrange [0:(netmax > 0 ? 1.25 * netmax : 1)]
    set key top left
    set style data histograms
    set style histogram clustered gap 1
    set style fill solid 0.8 border -1
    set boxwidth 0.9
    set xtics autofreq nomirror
    plot datafile index (nblocks - 1) using 2:xtic(4) title 'GSCN-sim (this harness)', \
         '' index (nblocks - 1) using 3 title 'paper (CVPR 2020)'
    unset style data
    unset multiplot
    unset output
}
