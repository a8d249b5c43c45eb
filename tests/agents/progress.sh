#!/bin/sh
# Reports progress on stderr (`::progress <percent> <step>`), pausing $1 seconds
# (default 0.2) after each report, logs an ordinary line, then prints "done".
delay=${1:-0.2}
cat >/dev/null
echo "::progress 10 starting" >&2
sleep "$delay"
echo "::progress 50 half way" >&2
sleep "$delay"
echo "::progress oops not a number" >&2
echo "::progress" >&2
echo "::progress 90" >&2
sleep "$delay"
echo "a plain log line" >&2
echo "done"
