#!/bin/sh
# On SIGTERM writes "term" to the file $2 and exits 143: proves runq asks nicely first.
# Writes "<own pid> <grandchild pid>" to the file $1.
trap 'echo term > "$2"; exit 143' TERM
sleep 1000 &
echo "$$ $!" > "$1.tmp" && mv "$1.tmp" "$1"
wait
