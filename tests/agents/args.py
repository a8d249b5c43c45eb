#!/usr/bin/python3
"""Prints its arguments as a JSON array (to check --agent-command word splitting)."""
import json
import sys

sys.stdout.write(json.dumps(sys.argv[1:]))
