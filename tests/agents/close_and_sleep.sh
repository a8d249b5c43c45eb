#!/bin/sh
# Closes stdin/stdout/stderr and keeps running: runq must still stop it on cancel.
# Writes "<own pid> <own pid>" to the file $1.
echo "$$ $$" > "$1.tmp" && mv "$1.tmp" "$1"
exec </dev/null >/dev/null 2>&1
sleep 1000
