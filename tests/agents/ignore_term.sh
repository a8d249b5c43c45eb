#!/bin/sh
# Ignores SIGTERM (and so does its grandchild `sleep`): only SIGKILL ends it.
# Writes "<own pid> <grandchild pid>" to the file $1 (or $RUNQ_TEST_PID_FILE).
trap '' TERM
file=${1:-$RUNQ_TEST_PID_FILE}
sleep 1000 &
if [ -n "$file" ]; then
  echo "$$ $!" > "$file.tmp" && mv "$file.tmp" "$file"
fi
wait
