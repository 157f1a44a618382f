#!/usr/bin/env python3
"""Third-party MQTT publisher for the MQTT integration tests (paho-mqtt 2.1, MQTT 5, QoS 1).

Publishes `--count` messages round-robin over `--devices` devices and waits until the broker has
acknowledged every one (exit 0), or fails after --timeout seconds (exit 1). Message i of device d
carries that device's sequence number k (0, 1, ...), so a reader can check every sequence:

  --shape number  topic <prefix>/dev-<d>/seq   payload "<k>"
  --shape json    topic <prefix>/dev-<d>/seq   payload {"timestamp": <base + k>, "value": <k>}
  --shape flat    topic <prefix>/dev-<d>       payload {"ts": <ms>, "seq": <k>, "half": <k/2>}
  --malformed M   additionally M malformed payloads on <prefix>/dev-bad/seq (kinds cycled)
"""
import argparse
import sys
import time

import paho.mqtt.client as mqtt

MALFORMED = [b"garbage", b'{"timestamp": 1764770000, "value": "high"}', b'{"timestamp": 1764770000}',
             b'{"timestamp": "yesterday", "value": 1}', b"{", b"nan"]


def acked(info):
    # is_published() raises for a message first sent while disconnected even after its resend was
    # acknowledged (its rc stays MQTT_ERR_NO_CONN), so read the flag the PUBACK sets.
    with info._condition:  # pylint: disable=protected-access
        return info._published  # pylint: disable=protected-access


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18830)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--shape", choices=["number", "json", "flat"], default="json")
    ap.add_argument("--malformed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0, help="messages/s (0: as fast as the client goes)")
    ap.add_argument("--timeout", type=float, default=240)
    ap.add_argument("--client-id", default="")
    a = ap.parse_args()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=a.client_id, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(200)
    c.max_queued_messages_set(0)
    c.reconnect_delay_set(min_delay=1, max_delay=2)
    acks = [0]

    def on_publish(client, userdata, mid, reason_code, properties):
        acks[0] += 1

    c.on_publish = on_publish
    c.connect(a.host, a.port, keepalive=20)
    c.loop_start()
    base = 1764770000.0
    infos = []
    t0 = time.time()
    seq = [0] * a.devices
    for i in range(a.count):
        d = i % a.devices
        k = seq[d]
        seq[d] += 1
        if a.shape == "number":
            topic, payload = f"{a.prefix}/dev-{d}/seq", str(k)
        elif a.shape == "json":
            topic, payload = f"{a.prefix}/dev-{d}/seq", '{"timestamp": %.3f, "value": %d}' % (base + k, k)
        else:
            topic = f"{a.prefix}/dev-{d}"
            payload = '{"ts": %d, "seq": %d, "half": %.1f}' % (int((base + k) * 1000), k, k / 2)
        infos.append(c.publish(topic, payload, qos=1))
        # At most 2000 ahead of the acknowledgements: paho's queue scan is linear in its length.
        while len(infos) - acks[0] > 2000 and time.time() - t0 < a.timeout:
            time.sleep(0.002)
        if a.rate > 0:
            ahead = (i + 1) / a.rate - (time.time() - t0)
            if ahead > 0:
                time.sleep(ahead)
    for j in range(a.malformed):
        infos.append(c.publish(f"{a.prefix}/dev-bad/seq", MALFORMED[j % len(MALFORMED)], qos=1))
    deadline = t0 + a.timeout
    pending = infos
    while pending and time.time() < deadline:  # acknowledged by the broker (resent after a reconnect)
        pending = [info for info in pending if not acked(info)]
        if pending:
            time.sleep(0.2)
    unacked = sum(1 for info in infos if not acked(info))
    c.loop_stop()
    c.disconnect()
    print(f"published {len(infos)} in {time.time() - t0:.1f} s, unacknowledged {unacked}", flush=True)
    return 1 if unacked else 0


if __name__ == "__main__":
    sys.exit(main())
