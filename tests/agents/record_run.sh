#!/bin/sh
# Appends this run's job id (and the attempt's pid) to $RUNQ_TEST_RUNS_FILE, sleeps
# $1 seconds (default 0), then prints "ran <job id>". The cluster tests count the lines:
# each job must run once (or once per attempt after a node died).
echo "$RUNQ_JOB_ID $$" >> "$RUNQ_TEST_RUNS_FILE"
sleep "${1:-0}"
printf "ran %s" "$RUNQ_JOB_ID"
