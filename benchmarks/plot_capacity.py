"""RSS against open connections for every server, one figure (RESULTS.md).

    python benchmarks/plot_capacity.py --connections 10000
    python benchmarks/plot_capacity.py --reports "1 worker=a.json" "8 workers=b.json" \
        --out benchmarks/results/capacity-workers.png

Runs ``wsframe bench capacity`` against each server of compare_servers.py
(server on CPU 0, load on CPU 1) and draws their RSS curves together into
benchmarks/results/capacity-rss.png. With ``--reports`` it runs nothing and
draws the curves of existing ``wsframe bench capacity --json`` reports
(RSS summed over the server's process tree: supervisor and workers).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compare_servers import BARE, ROOT, SERVERS, Running, bench  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--reports", nargs="+", metavar="LABEL=FILE",
                        help="draw these bench capacity JSON reports instead of running")
    parser.add_argument("--out", help="the PNG (default benchmarks/results/capacity-rss.png)")
    args = parser.parse_args()
    if args.reports:
        curves = {}
        for item in args.reports:
            label, _, path = item.partition("=")
            with open(path) as f:
                curves[label] = ramp_curve(json.load(f))
        draw(curves, args.out, "Memory by connection count: one process vs workers "
             "(idle, rooms of 3, heartbeats on)")
        return 0
    curves = {}
    for name, command in {**SERVERS, "bare selectors": BARE}.items():
        with Running(command) as server:
            report = bench("capacity", f"ws://127.0.0.1:{server.port}/", server.proc.pid,
                           "--connections", str(args.connections), "--rate", "2000",
                           "--hold", "3")
        curves[name] = ramp_curve(report)
    out = os.path.join(ROOT, "benchmarks", "results")
    with open(os.path.join(out, "capacity-curves.json"), "w") as f:
        json.dump(curves, f)
    draw(curves, args.out, "Memory by connection count (idle connections, compression off)")
    return 0


def ramp_curve(report: dict) -> list:
    """(connections, RSS) of a capacity report, up to the end of its hold at the ceiling."""
    samples = [s for s in report.get("samples", []) if s["rss"]]
    top = max((s["connections"] for s in samples), default=0)
    last = max((i for i, s in enumerate(samples) if s["connections"] >= 0.99 * top), default=0)
    return [(s["connections"], s["rss"]) for s in samples[:last + 1]]


def draw(curves: dict, path, title: str) -> None:
    path = path or os.path.join(ROOT, "benchmarks", "results", "capacity-rss.png")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, points in curves.items():
        base = points[0][1] if points else 0
        ax.plot([c for c, _ in points], [(r - base) / 2**20 for _, r in points], marker=".",
                linewidth=1, label=name)
    ax.set_xlabel("open connections")
    ax.set_ylabel("server RSS increase (MiB)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
