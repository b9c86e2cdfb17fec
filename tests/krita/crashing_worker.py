"""A stand-in c2e worker that greets, then dies on its first request (tests only).

Run as ``python crashing_worker.py``: says ``hello`` (protocol 1), reads one request header,
writes a last message on stderr and exits with status 3, as a worker killed by a crash would.
"""

import json
import sys

sys.stdout.write(json.dumps({"type": "hello", "protocol": 1, "devices": ["cpu"],
                             "options": ["size", "device", "strength", "clean"],
                             "model_loads": 0}) + "\n")
sys.stdout.flush()
sys.stdin.buffer.readline()
sys.stderr.write("RuntimeError: simulated crash in the worker\n")
sys.stderr.flush()
sys.exit(3)
