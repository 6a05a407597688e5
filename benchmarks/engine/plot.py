#!/usr/bin/env python3
"""Draws docs/img/*.png from the JSON lines that run.py writes.

    python3 -m venv /var/tmp/plot-venv && /var/tmp/plot-venv/bin/pip install matplotlib
    /var/tmp/plot-venv/bin/python benchmarks/engine/plot.py [results.jsonl]

One PNG per figure of docs/benchmarks.md ("Engine figures"): throughput and p99 against
offered load for direct and group traffic, server memory against idle connections, and
server CPU per delivery against group size. For a rate measured more than once, the last
measurement wins (a rerun on a quieter machine replaces a disturbed one).
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
IMG = REPO / "docs/img"


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            key = (r["shape"], r.get("store", "memory"), json.dumps(r["params"], sort_keys=True))
            rows[key] = r
    return list(rows.values())


def of(rows, shape, store="memory"):
    return [r for r in rows if r["shape"] == shape and r.get("store", "memory") == store]


def load_curve(rows, shape, title, name, per):
    pts = sorted(of(rows, shape), key=lambda r: r["params"]["rate"])
    if not pts:
        return
    offered = [r["params"]["rate"] * per(r) for r in pts]
    carried = [r["report"]["deliveries_per_s"] for r in pts]
    p99 = [r["report"]["delivery_latency_ms"]["p99"] for r in pts]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(offered, carried, "o-", label="deliveries/s carried")
    ax.plot(offered, offered, ":", color="grey", label="offered")
    ax.set_xlabel("offered deliveries/s")
    ax.set_ylabel("deliveries/s")
    ax2 = ax.twinx()
    ax2.plot(offered, p99, "s--", color="tab:red", label="p99 send → delivered (ms)")
    ax2.set_yscale("log")
    ax2.set_ylabel("p99 ms (log)")
    fig.legend(loc="upper left", bbox_to_anchor=(0.12, 0.88))
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(IMG / name, dpi=110)
    plt.close(fig)


def idle_curve(rows):
    pts = sorted(of(rows, "idle"), key=lambda r: r["params"]["connections"])
    if not pts:
        return
    n = [r["params"]["connections"] for r in pts]
    mib = [r["report"]["rss_after_kib"] / 1024 for r in pts]
    per = [r["report"]["kib_per_connection"] for r in pts]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(n, mib, "o-", label="server RSS (MiB)")
    ax.set_xlabel("idle authenticated WebSockets")
    ax.set_ylabel("RSS MiB")
    ax2 = ax.twinx()
    ax2.plot(n, per, "s--", color="tab:green", label="KiB per connection")
    ax2.set_ylim(0, max(per) * 1.5)
    ax2.set_ylabel("KiB per connection")
    fig.legend(loc="upper left", bbox_to_anchor=(0.12, 0.88))
    ax.set_title("Server memory against idle connections (memory store)")
    fig.tight_layout()
    fig.savefig(IMG / "idle-memory.png", dpi=110)
    plt.close(fig)


def cpu_by_size(rows):
    pts = sorted(of(rows, "groupsize"), key=lambda r: r["params"]["size"])
    if not pts:
        return
    size = [r["params"]["size"] for r in pts]
    us = [r["report"]["cpu"].get("server_us_per_delivery") or 0 for r in pts]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(size, us, "o-")
    ax.set_xscale("log")
    ax.set_xlabel("group size (members)")
    ax.set_ylabel("server CPU µs per delivery")
    ax.set_title("Server CPU per delivery against group size (same deliveries/s)")
    fig.tight_layout()
    fig.savefig(IMG / "cpu-per-delivery-by-group-size.png", dpi=110)
    plt.close(fig)


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "benchmarks/engine/results.jsonl"
    rows = load(path)
    IMG.mkdir(parents=True, exist_ok=True)
    load_curve(rows, "direct", "Direct messages: carried load and p99 (1,000 users)",
               "direct-load.png", lambda r: 1)
    load_curve(rows, "group", "One group of 1,001: carried deliveries and p99",
               "group-load.png", lambda r: r["params"]["size"])
    idle_curve(rows)
    cpu_by_size(rows)
    print("wrote", ", ".join(sorted(p.name for p in IMG.glob("*.png"))))


if __name__ == "__main__":
    main()
