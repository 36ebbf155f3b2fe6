"""RSS against open connections for every server, one figure (RESULTS.md).

    python benchmarks/plot_capacity.py --connections 10000

Runs ``wsframe bench capacity`` against each server of compare_servers.py
(server on CPU 0, load on CPU 1) and draws their RSS curves together into
benchmarks/results/capacity-rss.png.
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
    args = parser.parse_args()
    curves = {}
    for name, command in {**SERVERS, "bare selectors": BARE}.items():
        with Running(command) as server:
            report = bench("capacity", f"ws://127.0.0.1:{server.port}/", server.proc.pid,
                           "--connections", str(args.connections), "--rate", "2000",
                           "--hold", "3")
        samples = [s for s in report.get("samples", []) if s["rss"]]
        top = max((s["connections"] for s in samples), default=0)
        last = max((i for i, s in enumerate(samples) if s["connections"] >= 0.99 * top), default=0)
        curves[name] = [(s["connections"], s["rss"]) for s in samples[:last + 1]]
    out = os.path.join(ROOT, "benchmarks", "results")
    with open(os.path.join(out, "capacity-curves.json"), "w") as f:
        json.dump(curves, f)
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
    ax.set_title("Memory by connection count (idle connections, compression off)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "capacity-rss.png"), dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
