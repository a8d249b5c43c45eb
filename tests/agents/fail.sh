#!/bin/sh
# Writes $2 (default 3) stderr lines "error line N" (the last one without a newline) and
# exits with status $1 (default 3).
status=${1:-3}
lines=${2:-3}
cat >/dev/null
echo "partial stdout"
i=1
while [ "$i" -lt "$lines" ]; do
  echo "error line $i" >&2
  i=$((i + 1))
done
printf 'error line %s' "$lines" >&2
exit "$status"
