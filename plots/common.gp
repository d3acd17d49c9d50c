# plots/common.gp: loaded first by every figure script. Expects, from the command line,
#   gnuplot -e "plotdir='plots'; datafile='DIR/figdata/NAME.dat'; outbase='DIR/figures/NAME'" plots/NAME.gp
# Reads the figure data's header comments written by `resprop report` / `resprop plot`:
#   # title: ...   # footnote: ... (the run configuration)   # block I: LABEL (one per data block)
#   # blocks: N    # missing: WHAT AND THE COMMAND THAT MAKES IT (when there is no data)   # ref: VALUE TEXT
# and defines term(t) (1 = PNG, 2 = PDF, both cairo, text not "enhanced" so '_' prints as is).
# With no data it draws a page that says what is missing and exits.
if (!exists("datafile") || !exists("outbase")) {
    print "usage: gnuplot -e \"plotdir='plots'; datafile='FILE.dat'; outbase='OUT'\" plots/SCRIPT.gp"
    exit status 2
}
meta(key) = system(sprintf("sed -n 's/^# %s: //p' '%s' | head -n 1", key, datafile))
wrapped(key, width) = system(sprintf("sed -n 's/^# %s: //p' '%s' | head -n 1 | fold -s -w %d", key, datafile, width))
title_text = meta("title")
footnote = wrapped("footnote", 170)
missing = wrapped("missing", 90)
blocks_text = meta("blocks")
nblocks = blocks_text eq "" ? 0 : blocks_text + 0
blocklabel(i) = system(sprintf("sed -n 's/^# block %d: //p' '%s' | head -n 1", i, datafile))
ref_text = meta("ref")
refval = ref_text eq "" ? NaN : word(ref_text, 1) + 0
term(t) = t == 1 ? sprintf("set terminal pngcairo noenhanced size 1400,900 font 'sans,11'; set output '%s.png'", outbase) \
                 : sprintf("set terminal pdfcairo noenhanced size 11in,7in font 'sans,9'; set output '%s.pdf'", outbase)
# the largest first-column value (epochs, layer positions): integer tics when there are few
xmax = system(sprintf("awk '!/^#/ && NF > 0 { if ($1 > m) m = $1 } END { print m + 0 }' '%s'", datafile)) + 0
intxtics = xmax <= 20 ? "set xtics 1" : "set xtics autofreq"
set bmargin 7
set grid
if (nblocks == 0) {
    do for [t=1:2] {
        eval term(t)
        set title title_text font ',14'
        unset border; unset tics; unset key; unset grid
        set xrange [0:1]; set yrange [0:1]
        set label 100 "No data for this figure.\n\n".missing at graph 0.5, 0.6 center font ',13'
        set label 101 footnote at screen 0.01, 0.06 left font ',8'
        plot NaN notitle
        unset output
    }
    exit gnuplot
}
