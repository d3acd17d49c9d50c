# resprop plot: accuracy (left) and loss (right) per epoch of one training run, train and test.
# Data: run_epoch.dat, columns epoch train_loss test_loss train_acc_pct test_acc_pct.
load plotdir.'/common.gp'
do for [t=1:2] {
    eval term(t)
    eval intxtics
    set multiplot layout 1,2 margins 0.06,0.98,0.14,0.92 spacing 0.08,0.08 title title_text font ',14'
    set label 101 footnote at screen 0.01, 0.06 left font ',8'
    set xlabel 'epoch'
    set ylabel 'top-1 accuracy (%)'
    set key bottom right
    plot datafile index 0 using 1:4 with linespoints lw 2 title 'train', '' index 0 using 1:5 with linespoints lw 2 title 'test'
    unset label 101
    set ylabel 'cross-entropy loss (nats)'
    set key top right
    plot datafile index 0 using 1:2 with linespoints lw 2 title 'train', '' index 0 using 1:3 with linespoints lw 2 title 'test'
    unset multiplot
    unset output
}
