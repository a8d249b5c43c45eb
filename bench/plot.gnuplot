# Bar chart of bench/run.sh's throughputs (requests or jobs per second).
# gnuplot -e "datafile='...'; outfile='...'; charttitle='...'" bench/plot.gnuplot
set terminal pngcairo size 1000,560 font "DejaVu Sans,11" noenhanced
set output outfile
set title charttitle
set style data histogram
set style fill solid 0.85 border -1
set boxwidth 0.7
set ylabel "per second (req/s; jobs/s for submit and end-to-end)"
set yrange [0:*]
set grid ytics
set xtics rotate by -20
unset key
plot datafile using 2:xtic(1) linecolor rgb "#3b7dd8", \
     '' using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.8
