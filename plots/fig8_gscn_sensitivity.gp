# Figure 8: GSCN-sim sensitivity of the network backward speedup to one parameter at a time (PEs, DRAM
# bandwidth, gradient density, mask clustering), the others at the base point named in the footnote.
# Data: one block, rows "panel x speedup" (panel 1 PEs, 2 DRAM GB/s, 3 density, 4 cluster).
load plotdir.'/common.gp'
prows(p) = int(system(sprintf("awk '!/^#/ && NF == 3 && $1 == %d' '%s' | wc -l", p, datafile)))
xname(p) = p == 1 ? 'processing elements (PEs)' : p == 2 ? 'DRAM bandwidth (GB/s)' : \
           p == 3 ? 'gradient density (frac)' : 'mask clustering (0 = uniform, 1 = whole rows)'
do for [t=1:2] {
    eval term(t)
    set multiplot layout 2,2 margins 0.07,0.98,0.13,0.93 spacing 0.08,0.12 title title_text font ',14'
    set label 101 footnote at screen 0.01, 0.03 left font ',8'
    unset key
    do for [p=1:4] {
        set xlabel xname(p)
        set ylabel 'speedup (x)'
        set yrange [0:*]
        if (prows(p) > 0) {
            set autoscale x
            plot datafile using ($1 == p ? $2 : NaN):3 with linespoints lw 2 pt 7
        } else {
            set xrange [0:1]
            set label 102 'no sim records vary this parameter from the base point' at graph 0.5, 0.5 center
            plot NaN notitle
            unset label 102
        }
        unset label 101
    }
    unset multiplot
    unset output
}
