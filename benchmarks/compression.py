"""permessage-deflate trade-offs: size, CPU and memory by setting.

    python benchmarks/compression.py [--json benchmarks/results/compression.json]

For three payloads (a delivery-tracking position, a 1 KiB chat message, a
16 KiB JSON document) and each setting (level, window bits, memLevel, with
and without context takeover), it reports the compressed size as a share of
the original, microseconds to compress and to inflate one message (the
compiled codec, one core), and the zlib memory each side keeps per
connection when context is kept.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wsframe import codec  # noqa: E402
from wsframe.codec.deflate import deflater_memory, inflater_memory  # noqa: E402


def positions(n: int) -> list[bytes]:
    rng = random.Random(7)
    lat, lon = 52.52, 13.405
    out = []
    for i in range(n):
        lat += rng.uniform(-1e-4, 1e-4)
        lon += rng.uniform(-1e-4, 1e-4)
        out.append(json.dumps({"type": "position", "order": "42", "seq": i, "lat": round(lat, 6),
                               "lon": round(lon, 6), "eta_s": 600 - i, "ts": 1764147600 + i},
                              separators=(",", ":")).encode())
    return out


def chat(n: int) -> list[bytes]:
    rng = random.Random(11)
    words = ("the driver is two streets away and will arrive shortly please keep your phone "
             "close order ready pickup delayed traffic on the bridge thanks for waiting").split()
    return [" ".join(rng.choice(words) for _ in range(180)).encode()[:1024] for _ in range(n)]


def documents(n: int) -> list[bytes]:
    rng = random.Random(13)
    return [json.dumps([{"id": rng.randrange(10**6), "name": f"item-{rng.randrange(1000)}",
                         "price": round(rng.uniform(1, 50), 2), "tags": ["food", "fast"],
                         "available": rng.random() > 0.3} for _ in range(170)]).encode()[:16384]
            for _ in range(n)]


PAYLOADS = {"tracking position (~150 B)": positions, "chat message (1 KiB)": chat,
            "JSON document (16 KiB)": documents}
SETTINGS = [
    # (label, level, window bits, memLevel, context takeover)
    ("level 6, 15 bits, memLevel 8, no takeover (wsframe default)", 6, 15, 8, False),
    ("level 6, 15 bits, memLevel 8, context takeover", 6, 15, 8, True),
    ("level 1, 15 bits, memLevel 8, no takeover", 1, 15, 8, False),
    ("level 9, 15 bits, memLevel 8, no takeover", 9, 15, 8, False),
    ("level 6, 12 bits, memLevel 5, context takeover", 6, 12, 5, True),
    ("level 6, 9 bits, memLevel 1, context takeover", 6, 9, 1, True),
    ("level 6, 9 bits, memLevel 1, no takeover", 6, 9, 1, False),
]


def measure(messages: list[bytes], level: int, bits: int, mem: int, takeover: bool) -> dict:
    deflater = codec.Deflater(bits, mem, level)
    start = time.perf_counter()
    packed = [deflater.compress(m, not takeover) for m in messages]
    compress_s = time.perf_counter() - start
    inflater = codec.Inflater(bits)
    start = time.perf_counter()
    for p in packed:
        inflater.decompress(p, 1 << 24)
        inflater.finish(1 << 24, not takeover)
    inflate_s = time.perf_counter() - start
    raw = sum(map(len, messages))
    return {"ratio": sum(map(len, packed)) / raw,
            "compress_us": compress_s / len(messages) * 1e6,
            "inflate_us": inflate_s / len(messages) * 1e6,
            "deflater_bytes_kept": deflater_memory(bits, mem) if takeover else 0,
            "inflater_bytes_kept": inflater_memory(bits) if takeover else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results",
                                                       "compression.json"))
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    results = []
    for payload, make in PAYLOADS.items():
        messages = make(args.n if "16 KiB" not in payload else args.n // 10)
        print(f"\n**{payload}**\n")
        print("| setting | size after | compress | inflate | kept per connection: compressor / decompressor |")
        print("|---|---:|---:|---:|---:|")
        for label, level, bits, mem, takeover in SETTINGS:
            r = measure(messages, level, bits, mem, takeover)
            results.append({"payload": payload, "setting": label, **r})
            print(f"| {label} | {100 * r['ratio']:.0f}% | {r['compress_us']:.1f} µs | "
                  f"{r['inflate_us']:.1f} µs | {r['deflater_bytes_kept'] / 1024:,.0f} KiB / "
                  f"{r['inflater_bytes_kept'] / 1024:,.0f} KiB |")
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
