#!/usr/bin/env python3
"""Writes the JSON-lines input of the monitoring live test (tests/monitoring_live.sh) to stdout.

`sensors` sensors send one reading a second of event time, ending now: N(25, 0.5) noise, except
`pump-1/pressure`, whose last 50 readings are an episode (a level shift of +30, still noisy): the
baseline detector flags every one of them, and the alert policy must make them one alert.
A few malformed lines feed the dead-letter counters."""
import json
import random
import sys
import time

sensors = int(sys.argv[1]) if len(sys.argv) > 1 else 5
normal = int(sys.argv[2]) if len(sys.argv) > 2 else 300
episode = 50
rng = random.Random(7)
t0 = time.time() - (normal + episode)
names = ["pump-1/pressure"] + [f"pump-{i}/temperature" for i in range(2, sensors + 1)]
out = sys.stdout
for k in range(normal + episode):
    for name in names:
        v = 25 + rng.gauss(0, 0.5)
        if name == "pump-1/pressure" and k >= normal:
            v += 30
        rec = {"sensor_id": name, "timestamp": round(t0 + k, 3), "value": round(v, 4)}
        out.write(json.dumps(rec) + "\n")
    if k % 100 == 0:
        out.write("{not json\n")
