#!/bin/sh
# Never reads stdin: prints "hi" and exits (the prompt writer gets EPIPE, not a crash).
echo hi
