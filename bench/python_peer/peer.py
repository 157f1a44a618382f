"""A Python pipeline written the way the original design describes, for a side-by-side comparison.

Producer thread: simulated sensors (N(25, 5), p = 0.001 anomalies uniform(50, 100)), json.dumps per
record, into an in-process queue (the original design's Kafka stand-in when no broker is used).
Consumer: json.loads, validation, the same streaming baseline detector type as iotpipe's
(EWMA mean/variance z-score with winsorised updates, warm-up 30), a processing timestamp, and
batches of 1,000 rows written as Parquet through pyarrow into date=/hour= partitions.

Detector "lstm" (argv[4]): instead of the baseline, a PyTorch LSTM autoencoder of the same shape as
iotpipe's (encoder LSTM(1 -> 32) over a window of 32, its last hidden state repeated into a decoder
LSTM(32 -> 32), Linear(32 -> 1); seeded random weights: the cost does not depend on their values)
scores each reading's window (the sensor's last 32 values, scaled) one window per call, as the
original design does; score = window MSE / threshold. Rows before a sensor's window is full get 0.

  peer.py SENSORS EVENTS OUT [baseline|lstm]
Prints one JSON line: {"events", "elapsed_s", "events_per_s", "stored", "dead", "detector", "windows_scored"}.
"""
import json
import math
import os
import queue
import random
import sys
import threading
import time
from collections import deque

import pyarrow as pa
import pyarrow.parquet as pq

SENSORS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
EVENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
OUT = sys.argv[3] if len(sys.argv) > 3 else "/tmp/iotpipe_python_peer"
DETECTOR = sys.argv[4] if len(sys.argv) > 4 else "baseline"
WINDOW, HIDDEN = 32, 32
BATCH = 1000
q = queue.Queue(maxsize=10000)
STOP = object()


def producer():
    rng = random.Random(42)
    t0 = 1732406400.0
    for i in range(EVENTS):
        sid = i % SENSORS
        step = i // SENSORS
        anomalous = rng.random() < 0.001
        value = rng.uniform(50, 100) if anomalous else rng.gauss(25, 5)
        rec = {"sensor_id": f"sensor_{sid}", "timestamp": round(t0 + step + sid / SENSORS, 3),
               "value": round(value, 3), "is_anomaly_ground_truth": anomalous}
        if anomalous:
            rec["anomaly_type"] = "spike"
        q.put(json.dumps(rec).encode())
    q.put(STOP)


class Baseline:
    __slots__ = ("n", "mean", "var")

    def __init__(self):
        self.n, self.mean, self.var = 0, 0.0, 0.0

    def update(self, x):
        if self.n == 0:
            self.n, self.mean = 1, x
            return 0.0
        warm = self.n >= 30
        sd = math.sqrt(max(self.var, 1e-6))
        z = abs(x - self.mean) / sd
        sev = z / 4.5 if warm else 0.0
        a_m = 0.02 if warm else 1.0 / (self.n + 1)
        a_v = 0.005 if warm else 1.0 / (self.n + 1)
        xc = x
        if warm and z > 4.5:
            xc = self.mean + math.copysign(4.5 * sd, x - self.mean)
        dm = xc - self.mean
        self.mean += a_m * dm
        self.var = (1 - a_v) * (self.var + a_v * dm * dm)
        self.n += 1
        return sev


class LstmScorer:
    """Per-sensor rolling window + a PyTorch LSTM autoencoder scored per window."""

    def __init__(self):
        import torch  # only in this mode

        self.torch = torch
        torch.set_num_threads(int(os.environ.get("PEER_TORCH_THREADS", "1")))
        torch.manual_seed(1)

        class LstmAE(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = torch.nn.LSTM(1, HIDDEN, batch_first=True)
                self.dec = torch.nn.LSTM(HIDDEN, HIDDEN, batch_first=True)
                self.out = torch.nn.Linear(HIDDEN, 1)

            def forward(self, x):  # x: (B, W, 1)
                _, (hn, _) = self.enc(x)
                z = hn[-1].unsqueeze(1).repeat(1, x.shape[1], 1)
                d, _ = self.dec(z)
                return self.out(d)

        self.model = LstmAE().eval()
        self.windows = {}
        self.scored = 0

    def update(self, sid, x):
        w = self.windows.get(sid)
        if w is None:
            w = self.windows[sid] = deque(maxlen=WINDOW)
        w.append((x - 25.0) / 5.0)  # the model's scaler
        if len(w) < WINDOW:
            return 0.0
        t = self.torch.tensor(list(w), dtype=self.torch.float32).view(1, WINDOW, 1)
        with self.torch.inference_mode():
            r = self.model(t)
        self.scored += 1
        return float(((r - t) ** 2).mean())  # severity: window MSE / threshold (1.0)


def consumer(result):
    states = {}
    lstm = LstmScorer() if DETECTOR == "lstm" else None
    cols = {k: [] for k in ("sensor_id", "timestamp", "value", "is_anomaly_ground_truth", "anomaly_type",
                            "processing_timestamp", "is_anomaly_predicted", "anomaly_score", "model_version")}
    stored = dead = files = 0

    def flush():
        nonlocal files
        if not cols["sensor_id"]:
            return
        ts0 = cols["timestamp"][0]
        part = time.strftime("date=%Y-%m-%d/hour=%H", time.gmtime(ts0))
        d = os.path.join(OUT, part)
        os.makedirs(d, exist_ok=True)
        table = pa.table(cols)
        tmp = os.path.join(d, f".part-{files:06d}.parquet.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, os.path.join(d, f"part-{files:06d}.parquet"))
        files += 1
        for v in cols.values():
            v.clear()

    while True:
        raw = q.get()
        if raw is STOP:
            break
        try:
            rec = json.loads(raw)
            sid, ts, val, gt = rec["sensor_id"], rec["timestamp"], rec["value"], rec["is_anomaly_ground_truth"]
            if not isinstance(sid, str) or not isinstance(val, (int, float)) or not isinstance(gt, bool):
                raise ValueError("wrong type")
        except (ValueError, KeyError):
            dead += 1
            continue
        if lstm is not None:
            sev = lstm.update(sid, float(val))
        else:
            st = states.get(sid)
            if st is None:
                st = states[sid] = Baseline()
            sev = st.update(float(val))
        cols["sensor_id"].append(sid)
        cols["timestamp"].append(ts)
        cols["value"].append(float(val))
        cols["is_anomaly_ground_truth"].append(gt)
        cols["anomaly_type"].append(rec.get("anomaly_type"))
        cols["processing_timestamp"].append(time.time())
        cols["is_anomaly_predicted"].append(sev >= 1.0)
        cols["anomaly_score"].append(sev / (1 + sev))
        cols["model_version"].append("lstm-py" if lstm is not None else "baseline-py")
        stored += 1
        if len(cols["sensor_id"]) >= BATCH:
            flush()
    flush()
    result.update(stored=stored, dead=dead, detector=DETECTOR, windows_scored=lstm.scored if lstm else 0)


def main():
    result = {}
    if DETECTOR == "lstm":
        import torch  # imported before the clock starts (import takes seconds)

        torch.zeros(1)
    t0 = time.perf_counter()
    p = threading.Thread(target=producer)
    c = threading.Thread(target=consumer, args=(result,))
    p.start()
    c.start()
    p.join()
    c.join()
    el = time.perf_counter() - t0
    print(json.dumps({"events": EVENTS, "elapsed_s": el, "events_per_s": EVENTS / el, **result}))


if __name__ == "__main__":
    main()
