# Figure 1: test accuracy vs epoch, dense vs ReSprop at several RS (and warm-up variants), mean over
# the seeds of each configuration with +-1 std bars. Data: resprop report -> figdata/fig1_accuracy_epoch.dat
load plotdir.'/common.gp'
do for [t=1:2] {
    eval term(t)
    eval intxtics
    set title title_text font ',14'
    set xlabel 'epoch'
    set ylabel 'test top-1 accuracy (%)'
    set key bottom right
    set label 101 footnote at screen 0.01, 0.06 left font ',8'
    plot for [i=0:nblocks-1] datafile index i using 1:2:3 with yerrorlines lw 2 title blocklabel(i)
    unset output
}
