#!/usr/bin/env python3
"""Runs every shell block of the README as written, on small sizes (issue 19: "every command in the
README runs as written").

Each block runs in order in one temporary working directory (later blocks use what earlier ones
stored, as a reader following the guide would). Rewrites, and only these: sizes are capped
(--sensors scaled down, --events, --duration, --since, --epochs); `build/iotpipe` is the binary under test; `make ...`
and `scripts/kafka|mqtt ...` lines are not run (the suite starts its own servers); Kafka commands get
the suite's broker and a topic and group of their own (skipped without IOTPIPE_KAFKA_BROKERS); the
datasets block is skipped when ../shared/datasets is absent. A `run` with no bound (no --events or
--duration) is a real-time run until Ctrl-C: it gets SIGINT after a few seconds and must exit 0.
Every other command must exit 0 (monitor: 0, or 3 for drift) within its time limit.

  tests/readme_commands.py BINARY [README]
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

CAPS = {"--events": 50000, "--epochs": 2}


def blocks(text):
    out, cur, lang = [], None, None
    for line in text.splitlines():
        if line.startswith("```"):
            if cur is None:
                lang, cur = line[3:].strip(), []
            else:
                if lang in ("sh", "bash", "shell"):
                    out.append(cur)
                cur = None
            continue
        if cur is not None:
            cur.append(line)
    return out


def commands(lines):
    joined, acc = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            acc += line.rstrip()[:-1] + " "
            continue
        joined.append(acc + line)
        acc = ""
    for line in joined:
        line = re.sub(r"(^|\s)#.*$", "", line).strip()  # comments (no '#' inside the README's quotes)
        if line:
            yield line


def cap(cmd):
    def num(m):  # sensors scaled (distinct fleets stay distinct: 1000 -> 20, 100 -> 2), others capped
        flag, value = m.group(1), int(m.group(2))
        return f"{flag} {max(2, value // 50) if flag == '--sensors' else min(value, CAPS[flag])}"

    cmd = re.sub(r"(--sensors|--events|--epochs) (\d+)", num, cmd)
    # spans in days: at most one (the data of a capped --duration, and training spans over it)
    return re.sub(r"--(duration|since) (\d+)d\b", lambda m: f"--{m.group(1)} {min(int(m.group(2)), 1)}d", cmd)


def main():
    binary = os.path.abspath(sys.argv[1])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    readme = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "README.md")
    brokers = os.environ.get("IOTPIPE_KAFKA_BROKERS", "")
    tag = f"readme-{os.getpid()}"
    ran, skipped, failed = 0, [], []
    with tempfile.TemporaryDirectory(prefix="iotpipe-readme-") as wd:
        env = dict(os.environ)
        for block in blocks(open(readme).read()):
            for cmd in commands(block):
                if re.match(r"(make|scripts/kafka|scripts/mqtt) ", cmd):
                    skipped.append(cmd + "   (servers: the suite's own)")
                    continue
                m = re.match(r"^([A-Z]+)=(\S+)$", cmd)
                if m:  # B=build/iotpipe, D=../shared/datasets
                    v = binary if m.group(2) == "build/iotpipe" else os.path.normpath(os.path.join(root, m.group(2)))
                    env[m.group(1)] = v
                    continue
                cmd = re.sub(r"(^|\s)build/iotpipe\b", lambda x: x.group(1) + binary, cmd)
                if "$D" in cmd and not os.path.isdir(env.get("D", "")):
                    skipped.append(cmd + "   (no datasets here)")
                    continue
                kafka = "--source kafka" in cmd or "--output kafka" in cmd
                if kafka:
                    if not brokers:
                        skipped.append(cmd + "   (IOTPIPE_KAFKA_BROKERS unset)")
                        continue
                    cmd += f" --brokers {brokers} --topic {tag}"
                    if "--source kafka" in cmd:
                        cmd += f" --group {tag}"
                cmd = cap(cmd)
                words = shlex.split(cmd.replace("$B", "B"))
                live = len(words) > 1 and words[1] == "run" and "--events" not in cmd and "--duration" not in cmd
                t0 = time.time()
                p = subprocess.Popen(["bash", "-c", "exec " + cmd], cwd=wd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
                try:
                    if live:
                        time.sleep(6)
                        p.send_signal(signal.SIGINT)
                    out, err = p.communicate(timeout=300)
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, err = p.communicate()
                    failed.append((cmd, "timed out after 300 s", err[-2000:]))
                    continue
                ok = p.returncode == 0 or (" monitor " in f" {cmd} " and p.returncode == 3)
                ran += 1
                print(f"{'ok  ' if ok else 'FAIL'} {time.time() - t0:5.1f}s rc={p.returncode} {cmd}", flush=True)
                if not ok:
                    failed.append((cmd, f"exit {p.returncode}", (out[-1000:] + err[-2000:])))
    for s in skipped:
        print("skip", s)
    for cmd, why, log in failed:
        print(f"\nFAILED: {cmd}\n  {why}\n{log}")
    print(f"readme commands: {ran} ran, {len(failed)} failed, {len(skipped)} skipped")
    return 1 if failed or ran < 10 else 0


if __name__ == "__main__":
    sys.exit(main())
