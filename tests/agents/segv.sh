#!/bin/sh
# Dies of SIGSEGV after one stderr line.
echo "about to crash" >&2
kill -SEGV $$
sleep 5
