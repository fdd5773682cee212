"""Memory and compression ratio of permessage-deflate settings, per connection.

Prints, for each (compressor window bits, memLevel, decompressor window bits):

- the memory zlib allocates for one compressor plus one decompressor that have both been
  used (``tracemalloc``, averaged over 200 pairs), and the resident memory they add (each
  setting is measured in a fresh process);
- the size on the wire of 2000 JSON messages (~1 KiB each) relative to their size, with and
  without context takeover, and the time to compress one.

The numbers in docs/topics/compression.rst come from this script. Run it with
``python benchmarks/deflate_settings.py``; it never asserts anything.
"""

from __future__ import annotations

import gc
import json
import random
import subprocess
import sys
import time
import tracemalloc
import zlib

PAIRS = 200
SETTINGS = [
    # (compressor window bits, memLevel, decompressor window bits, label)
    (15, 8, 15, "zlib defaults"),
    (15, 5, 15, "syncws client"),
    (12, 8, 15, ""),
    (12, 5, 15, "syncws server"),
    (12, 5, 12, "server, client_max_window_bits=12"),
    (10, 4, 15, ""),
    (9, 5, 15, ""),
]


def messages(n: int, seed: int = 7) -> list[bytes]:
    """JSON messages like a trading or chat feed: batches of 1 to 12 small records."""
    rnd = random.Random(seed)
    users = [f"user{rnd.randrange(10**6)}" for _ in range(50)]
    events = ["login", "logout", "trade", "quote", "chat", "heartbeat", "order.update"]
    tags = ["eu", "us", "fx", "crypto", "bond", "vip", "new"]
    notes = ["", "ok", "partial fill", "cancelled by user", "retry"]
    out = []
    for i in range(n):
        items = [
            {
                "id": 1_000_000 + i * 13 + j,
                "user": rnd.choice(users),
                "event": rnd.choice(events),
                "ts": 1_760_000_000.0 + i + rnd.random(),
                "price": round(rnd.uniform(10, 500), 2),
                "qty": rnd.randint(1, 1000),
                "tags": rnd.sample(tags, 2),
                "note": rnd.choice(notes),
            }
            for j in range(rnd.randint(1, 12))
        ]
        out.append(json.dumps({"type": "batch", "seq": i, "items": items}).encode())
    return out


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def memory(cw: int, mem: int, dw: int, warmup: list[bytes]) -> tuple[float, float]:
    gc.collect()
    before = rss_kib()
    tracemalloc.start()
    pairs = []
    for _ in range(PAIRS):
        compressor = zlib.compressobj(6, zlib.DEFLATED, -cw, mem)
        decompressor = zlib.decompressobj(-dw)
        for message in warmup:
            decompressor.decompress(compressor.compress(message) + compressor.flush(2))
        pairs.append((compressor, decompressor))
    allocated, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    resident = rss_kib() - before
    del pairs
    return allocated / PAIRS / 1024, resident / PAIRS


def ratio(cw: int, mem: int, msgs: list[bytes], flush: int) -> tuple[float, float]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -cw, mem)
    size = 0
    start = time.perf_counter()
    for message in msgs:
        size += len(compressor.compress(message) + compressor.flush(flush)) - 4
    elapsed = time.perf_counter() - start
    return size / sum(map(len, msgs)), elapsed / len(msgs) * 1e6


def main() -> None:
    msgs = messages(2000)
    print(f"{len(msgs)} JSON messages, {sum(map(len, msgs)) / len(msgs):.0f} bytes on average")
    print()
    print("comp. bits/memLevel  decomp. bits  KiB allocated  KiB resident  ratio  ratio (no ctx)")
    for cw, mem, dw, label in SETTINGS:
        args = [sys.executable, __file__, "--memory", str(cw), str(mem), str(dw)]
        allocated, resident = map(float, subprocess.check_output(args, text=True).split())
        with_ctx, us = ratio(cw, mem, msgs, zlib.Z_SYNC_FLUSH)
        without_ctx, _ = ratio(cw, mem, msgs, zlib.Z_FULL_FLUSH)
        print(
            f"{cw:>10}/{mem:<8} {dw:>12} {allocated:>14.0f} {resident:>13.0f} "
            f"{with_ctx:>6.3f} {without_ctx:>15.3f}  ({us:.0f} us/msg) {label}"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory"]:
        cw, mem, dw = map(int, sys.argv[2:5])
        print(*memory(cw, mem, dw, messages(200)))
    else:
        main()
