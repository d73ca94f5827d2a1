"""Uploads of identical content, deletes and reads racing the garbage collector (running
every second with no grace period). No read of an object a thread knows to be committed
and not yet deleted or overwritten may ever fail; fsck is clean at the end.

Duration: CAIRN_RACE_SECONDS (default 30)."""
from __future__ import annotations

import collections
import os
import random
import threading
import time

import pytest

import cairn_harness as h
from cairn_harness import KiB, MiB

RACE_SECONDS = float(os.environ.get("CAIRN_RACE_SECONDS", 30))
WORKERS = 6
NS = "races"

pytestmark = pytest.mark.time_limit(RACE_SECONDS + 240)


def shared_contents() -> list[bytes]:
    """A few bodies every worker uploads over and over, so chunks are shared, dropped to
    zero references and re-referenced all the time."""
    return [b"tiny", h.pseudo_random_bytes(100 * KiB, "race-100k"),
            h.pseudo_random_bytes(1 * MiB, "race-1m"),
            h.pseudo_random_bytes(h.CHUNK_SIZE_BYTES + 10, "race-2-chunks")]


def test_gc_races_uploads_deletes_and_reads(server_factory, tenant):
    srv = server_factory(gc_interval=1, gc_grace=0)
    contents = shared_contents()
    by_hash = {"sha256:" + h.sha256_hex(c): c for c in contents}
    deadline = time.monotonic() + RACE_SECONDS
    failures: list[str] = []
    stats = {"uploads": 0, "deletes": 0, "reads": 0, "overwrites": 0}
    lock = threading.Lock()

    def fail(message: str) -> None:
        with lock:
            failures.append(message)

    def count(kind: str) -> None:
        with lock:
            stats[kind] += 1

    def check_read(c: h.Client, obj: dict, data: bytes, by_key: bool) -> None:
        r = (c.get_by_key(NS, tenant, obj["key"]) if by_key else c.get(obj["id"], tenant=tenant))
        if r.status_code != 200 or r.content != data:
            fail(f"read of committed {obj['key']} ({obj['id']}, by_key={by_key}) -> "
                 f"{r.status_code}, {len(r.content)} bytes, expected {len(data)}")
        count("reads")

    def worker(index: int) -> None:
        rng = random.Random(index)
        c = h.Client(srv, srv.admin_key)
        live: dict[str, dict] = {}  # key -> object JSON, committed by this thread
        n = 0
        while time.monotonic() < deadline and len(failures) < 20:
            n += 1
            roll = rng.random()
            try:
                if roll < 0.35 or not live:
                    data = rng.choice(contents)
                    key = f"w{index}/k{n}"
                    r = c.upload(data, tenant=tenant, namespace=NS, key=key)
                    if r.status_code != 201:
                        fail(f"upload {key} -> {r.status_code} {r.content[:200]!r}")
                        continue
                    live[key] = r.json()
                    count("uploads")
                    check_read(c, live[key], data, by_key=False)
                elif roll < 0.50:
                    key = rng.choice(list(live))
                    data = rng.choice(contents)
                    r = c.upload(data, tenant=tenant, namespace=NS, key=key)
                    if r.status_code != 201:
                        fail(f"overwrite {key} -> {r.status_code} {r.content[:200]!r}")
                        continue
                    old = live[key]
                    live[key] = r.json()
                    count("overwrites")
                    if c.get(old["id"], tenant=tenant).status_code != 404:
                        fail(f"replaced id {old['id']} of {key} is still readable")
                    check_read(c, live[key], data, by_key=True)
                elif roll < 0.75:
                    key = rng.choice(list(live))
                    obj = live.pop(key)
                    r = c.delete(obj["id"], tenant=tenant)
                    if r.status_code != 204:
                        fail(f"delete {key} -> {r.status_code} {r.content[:200]!r}")
                        continue
                    count("deletes")
                    if c.get(obj["id"], tenant=tenant).status_code != 404:
                        fail(f"deleted {key} ({obj['id']}) is still readable")
                else:
                    key = rng.choice(list(live))
                    obj = live[key]
                    check_read(c, obj, by_hash[obj["content_hash"]], by_key=rng.random() < 0.5)
            except Exception as e:  # noqa: BLE001 - any exception is a failure
                fail(f"worker {index}: {e!r}")
                return
        # Everything this worker still holds must read back, after all the GC passes.
        for obj in live.values():
            check_read(c, obj, by_hash[obj["content_hash"]], by_key=False)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic()) + 120)
    assert not any(t.is_alive() for t in threads), "a worker did not finish"
    kinds = collections.Counter(f.split(" ")[0] for f in failures)
    assert not failures, (f"{len(failures)} failures {dict(kinds)} after {stats}; first ones:\n" +
                          "\n".join(failures[:10]))
    assert stats["uploads"] > 50 and stats["deletes"] > 20 and stats["reads"] > 50, stats
    print(f"\nrace stats: {stats}")

    time.sleep(2)  # let the server's GC pass settle
    code, report = h.fsck_json(srv.data_dir)
    assert code == 0, report
    assert report["objects_checked"] >= 1
