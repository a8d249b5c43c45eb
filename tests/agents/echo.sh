#!/bin/sh
# Echo agent for runq's command agent tests: the prompt (stdin) is the result (stdout).
exec cat
