#!/usr/bin/env python3
"""Runs chat-server through the shapes of docs/benchmarks.md ("Engine figures")
and appends one JSON line per measurement to a results file that plot.py reads.

Every measurement gets a fresh server (memory store unless --store says otherwise),
so that one rate's backlog never spoils the next. The binaries are release builds:

    cargo build --release -p chat-server -p chat-load
    benchmarks/engine/run.py direct --rates 2000,5000,10000,20000
    benchmarks/engine/run.py group --size 1000 --rates 45,100,200,300
    benchmarks/engine/run.py groupsize --sizes 10,100,1000,10000 --deliveries 45000
    benchmarks/engine/run.py idle --counts 1000,5000,10000,19000
    benchmarks/engine/run.py storm --size 10000 --rate 1 --duration 30
    benchmarks/engine/plot.py          # PNGs into docs/img/

Load shapes run with the per-address, per-user and socket caps off (the flags below:
a load generator whose thousands of users share one machine's addresses is no attack).
`storm --defaults` runs the server with every default limit and no flag at all
(up to about 2,000 members: one create call must fit in 64 KiB). Without
`--defaults`, `storm` keeps every default that decides whether a session is closed (queue sizes,
the slow-consumer rule, the typing gate): the point there is that a normal public
server closes nobody. It also gives pings 120 s (`--ping-interval-secs 120`): chat-load
does not read a connection until every user is connected, and opening 10,000 takes
longer than the default 20 s ping interval; and `--max-frame-bytes 1048576`, because the
group is made by one create call naming every member (10,000 ids pass the default 64 KiB
body limit; the flag also raises the socket write buffer's cap to 4 MiB). A group built by
10,000 self-joins instead makes 10,000 join events, which every later member syncs: about
5 x 10^7 frames, a setup this machine did not finish (docs/benchmarks.md).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOAD_FLAGS = [
    "--max-connections-per-addr", "0", "--max-sockets-per-user", "0",
    "--user-rate", "0", "--addr-rate", "0",
]
PORT = 18500


def binaries():
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return Path(os.environ.get("CHAT_BIN", target / "release"))


def say(msg):
    print(f"engine-bench: {msg}", file=sys.stderr, flush=True)


class Server:
    """A chat-server process for one measurement."""

    def __init__(self, args, extra_flags=(), defaults=False):
        cmd = [str(binaries() / "chat-server"), "--listen", f"127.0.0.1:{PORT}",
               "--store", args.store, "--insecure-fast-hashing"]
        if not defaults:
            cmd += LOAD_FLAGS + list(extra_flags)
        self.log = open(os.environ.get("CHAT_BENCH_SERVER_LOG", "/var/tmp/engine-bench-server.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log,
                                     env={**os.environ, "CHAT_JWT_SECRET": "x" * 40})
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("chat-server did not answer /healthz within 30 s")

    def stop(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()


def chat_load(args, server, extra):
    cmd = [str(binaries() / "chat-load"), "--server", f"127.0.0.1:{PORT}",
           "--server-pid", str(server.proc.pid), "--json",
           "--source-addrs", args.sources] + extra
    say(" ".join(cmd[1:]))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        say(done.stderr[-2000:])
        raise SystemExit(f"chat-load failed ({done.returncode})")
    return json.loads(done.stdout)


def machine_cores_busy():
    """Cores in use on the whole machine, read twice 1 s apart (a quiet check)."""
    def sample():
        with open("/proc/stat") as f:
            parts = [int(x) for x in f.readline().split()[1:]]
        return sum(parts), parts[3] + parts[4]
    t0, i0 = sample()
    time.sleep(1)
    t1, i1 = sample()
    return round(((t1 - t0) - (i1 - i0)) / 100, 2)


def record(args, shape, params, report):
    line = {"shape": shape, "params": params, "store": args.store,
            "other_cores_before": args.busy, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "report": report}
    with open(args.out, "a") as f:
        f.write(json.dumps(line) + "\n")
    cpu = report.get("cpu", {})
    say(f"{shape} {params}: {report['messages_per_s']:.0f} msgs/s, "
        f"{report['deliveries_per_s']:.0f} deliveries/s, p99 delivery "
        f"{report['delivery_latency_ms']['p99']} ms, server CPU "
        f"{cpu.get('server_us_per_message')} us/msg {cpu.get('server_us_per_delivery')} us/delivery, "
        f"closes {report['closes']}, errors {report['errors']}, undelivered {report['undelivered']}")


def measure(args, shape, params, extra, server_flags=(), defaults=False):
    args.busy = machine_cores_busy()
    server = Server(args, server_flags, defaults)
    try:
        report = chat_load(args, server, extra)
    finally:
        server.stop()
    record(args, shape, params, report)


def direct(args):
    for rate in args.rates:
        measure(args, "direct", {"rate": rate, "users": args.users},
                ["--users", str(args.users), "--rate", str(rate),
                 "--duration", str(args.duration), "--warmup", "2"])


def group(args):
    for rate in args.rates:
        measure(args, "group", {"rate": rate, "size": args.size},
                ["--users", str(args.size + 1), "--groups", "1", "--rate", str(rate),
                 "--duration", str(args.duration), "--warmup", "2"])


def groupsize(args):
    for size in args.sizes:
        rate = max(1, round(args.deliveries / size))
        measure(args, "groupsize", {"size": size, "rate": rate},
                ["--users", str(size + 1), "--groups", "1", "--rate", str(rate),
                 "--duration", str(args.duration), "--warmup", "2"],
                # One create call names every member (see `storm`).
                server_flags=["--max-frame-bytes", "1048576"])


def storm(args):
    extra = ["--users", str(args.size), "--groups", "1", "--rate", str(args.rate),
             "--duration", str(args.duration), "--warmup", "2", "--read", "--typing"]
    params = {"size": args.size, "rate": args.rate, "defaults": args.defaults}
    measure(args, "storm", params, extra,
            server_flags=["--ping-interval-secs", "120", "--max-frame-bytes", "1048576"],
            defaults=args.defaults)


def idle(args):
    for n in args.counts:
        args.busy = machine_cores_busy()
        server = Server(args)
        try:
            cmd = [str(binaries() / "idle-conns"), "--server", f"127.0.0.1:{PORT}",
                   "--pid", str(server.proc.pid), "--connections", str(n), "--sources", "8", "--parallel", "48",
                   "--settle", "5"]
            say(" ".join(cmd[1:]))
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True).stdout
        finally:
            server.stop()
        # "N idle connections: server RSS B KiB before, A KiB after, P KiB per connection"
        words = out.split()
        before, after = int(words[5]), int(words[8])
        line = {"shape": "idle", "params": {"connections": n}, "store": args.store,
                "other_cores_before": args.busy,
                "report": {"rss_before_kib": before, "rss_after_kib": after,
                           "kib_per_connection": (after - before) / n}}
        with open(args.out, "a") as f:
            f.write(json.dumps(line) + "\n")
        say(out.strip())


def ints(s):
    return [int(x) for x in s.split(",")]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/engine/results.jsonl")
    p.add_argument("--store", default="memory")
    p.add_argument("--sources", default="127.0.0.2-127.0.0.250")
    p.add_argument("--duration", type=int, default=10)
    sub = p.add_subparsers(dest="shape", required=True)
    s = sub.add_parser("direct")
    s.add_argument("--rates", type=ints, required=True)
    s.add_argument("--users", type=int, default=1000)
    s = sub.add_parser("group")
    s.add_argument("--rates", type=ints, required=True)
    s.add_argument("--size", type=int, default=1000)
    s = sub.add_parser("groupsize")
    s.add_argument("--sizes", type=ints, required=True)
    s.add_argument("--deliveries", type=int, default=45000)
    s = sub.add_parser("storm")
    s.add_argument("--size", type=int, default=1000)
    s.add_argument("--rate", type=float, default=1)
    s.add_argument("--defaults", action="store_true",
                   help="run the server with every default limit and no load flags")
    s = sub.add_parser("idle")
    s.add_argument("--counts", type=ints, required=True)
    args = p.parse_args()
    {"direct": direct, "group": group, "groupsize": groupsize, "storm": storm,
     "idle": idle}[args.shape](args)


if __name__ == "__main__":
    main()
