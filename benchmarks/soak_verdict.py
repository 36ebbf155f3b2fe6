"""The soak's verdict (each check a dict: name, ok, detail) and its plot; see ``soak.py``."""
from __future__ import annotations

import statistics
from typing import Optional

__all__ = ["MIB", "STALL_SECONDS", "check", "memory_check", "hostile_check", "latency_text", "plot"]

MIB = 1 << 20
STALL_SECONDS = 10.0   # a flooder whose socket took nothing this long is held still


def check(name: str, ok: bool, detail: str) -> dict:
    return {"name": name, "ok": bool(ok), "detail": detail}


def memory_check(samples: list[dict], events: dict, args) -> dict:
    """Median RSS of the hold's last third against its first third (see the module doc)."""
    start, end = events.get("hold_start"), events.get("hold_end")
    name = "memory flat"
    if start is None or end is None:
        return check(name, False, "no hold (the ramp or the server failed)")
    span = end - start
    hold = [s for s in samples if start <= s["t"] <= end + 1e-6]
    first = [s["rss"] for s in hold if s["t"] < start + span / 3]
    last = [s["rss"] for s in hold if s["t"] >= start + 2 * span / 3]
    if len(first) < 2 or len(last) < 2:
        return check(name, False, f"too few samples ({len(first)} + {len(last)}) to judge")
    a, b = statistics.median(first), statistics.median(last)
    allowed = max(args.flat_pct / 100 * a, args.flat_mib * MIB)
    peak = max(s["rss"] for s in hold)
    detail = (f"median RSS first third {a / MIB:.1f} MiB ({len(first)} samples), last third "
              f"{b / MIB:.1f} MiB ({len(last)}): {(b - a) / MIB:+.1f} MiB, allowed "
              f"+{allowed / MIB:.1f} MiB (max of {args.flat_pct:g}% and {args.flat_mib:g} MiB); "
              f"peak {peak / MIB:.1f} MiB")
    return {**check(name, b - a <= allowed, detail), "first_third_rss": a, "last_third_rss": b,
            "allowed_growth": allowed, "peak_rss": peak}


def hostile_check(result: dict, events: dict) -> dict:
    """Every flooder cut off or held without growth; every slow handshake dropped."""
    if "peers" not in result:
        return check("hostile peers contained", False, result.get("error", "no result"))
    span = events.get("hold_end", 0) - events.get("hold_start", 0)
    stall = min(STALL_SECONDS, span / 3)
    problems, parts = [], []
    for peer in result["peers"]:
        kind = peer["kind"]
        if kind == "slowloris":
            ok = peer["cut_off"] > 0 or span < 15   # the server's handshake bound is 10 s
        else:
            peer["held_still"] = peer["open_at_end"] and peer["took_nothing_for_s"] >= stall
            ok = peer["cut_off"] > 0 or peer["held_still"]
        if not ok:
            problems.append(kind)
        state = ("held still" if peer.get("held_still") else
                 "open" if peer["open_at_end"] else "closed")
        parts.append(f"{kind}: opens {peer['opens']}, cut off {peer['cut_off']}, {state} at "
                     f"end, {peer['bytes_sent'] / MIB:.1f} MiB sent (max "
                     f"{peer['max_bytes_one_connection'] / MIB:.1f} on one), longest "
                     f"{peer['longest_connection_s']:.0f} s")
    return check("hostile peers contained", not problems,
                 ("not contained: " + ", ".join(problems) + "; " if problems else "")
                 + "; ".join(parts))


def latency_text(lat: dict) -> str:
    if not lat:
        return "n/a"
    return f"p50 {lat['p50'] / 1000:.2f} ms, p99 {lat['p99'] / 1000:.2f} ms"


def plot(report: dict, path: str) -> Optional[str]:
    """RSS (MiB) and held connections over time, the hold's thirds marked; None or an error."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot"
    samples, events = report["samples"], report["events"]
    t = [s["t"] for s in samples]
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.plot(t, [s["rss"] / MIB for s in samples], color="tab:red", label="server RSS (MiB)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    other = ax.twinx()
    other.plot(t, [s["connections"] for s in samples], color="tab:blue", label="held open")
    other.plot(t, [s["fds"] for s in samples], color="tab:gray", linestyle=":",
               label="server fds")
    other.set_ylabel("connections")
    other.set_ylim(bottom=0)
    if "hold_start" in events and "hold_end" in events:
        a, b = events["hold_start"], events["hold_end"]
        ax.axvspan(a, a + (b - a) / 3, color="tab:green", alpha=0.08)
        ax.axvspan(b - (b - a) / 3, b, color="tab:green", alpha=0.08)
    lines = ax.get_lines() + other.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="lower right")
    cfg = report["config"]
    ax.set_title(f"soak {report['verdict']}: {cfg['connections']:,} held, "
                 f"{cfg['duration']:g} s, churn {cfg['churn_rate']:g}/s, "
                 f"publish {cfg['publish_rate']:g}/s")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None
