"""kill -9 crash test.

Each cycle starts `cairn serve` (GC every second, 1 s grace period) on the same data
directory, runs a few threads of concurrent uploads (small, multi-chunk ~9 MiB, shared
content for dedup), overwrites, deletes and reads for a random 0.5-3 s, then kills the
server with SIGKILL. After every restart:
  * every acknowledged (201) upload that was not later deleted or overwritten (by an
    acknowledged request) reads back byte-identical by id and is the object at its key;
  * every id that an acknowledged delete or overwrite removed is 404;
  * an upload or delete whose response was lost either happened completely or not at
    all: the key holds the previous object, or the complete new content (or nothing,
    for a delete); never a partial object, never an object nobody wrote.
After all cycles: `cairn gc --grace 0` and `cairn fsck --json` report a clean store with
no stale temp files, and everything still reads back.

CAIRN_CRASH_CYCLES (default 20), CAIRN_CRASH_SEED (default 1).
"""
from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

import requests

import cairn_harness as h
from cairn_harness import KiB, MiB

CYCLES = int(os.environ.get("CAIRN_CRASH_CYCLES", 20))
SEED = int(os.environ.get("CAIRN_CRASH_SEED", 1))
WORKERS = 4
TENANT = "crash"
NS = "crash"
TIMEOUT = (3.0, 30.0)
SAMPLE_READS = 25
MAX_KEYS_PER_WORKER = 80


@dataclass(frozen=True)
class Known:
    """A committed object as a client saw it acknowledged."""
    id: str
    sha: str  # hex
    size: int


@dataclass
class Uncertain:
    """The last operation on a key, whose response never came."""
    op: str  # "upload" or "delete"
    sha: str = ""
    size: int = 0


@dataclass
class WorkerState:
    index: int
    current: dict  # key -> Known: what this worker knows to be committed
    superseded: list = field(default_factory=list)  # ids removed by acknowledged requests
    uncertain: dict = field(default_factory=dict)  # key -> Uncertain
    touched: set = field(default_factory=set)
    failures: list = field(default_factory=list)
    counts: dict = field(default_factory=lambda: {"upload": 0, "overwrite": 0, "delete": 0,
                                                  "read": 0})


def shared_contents() -> list[bytes]:
    return [b"", b"identical small body", h.pseudo_random_bytes(70 * KiB, "crash-70k"),
            h.pseudo_random_bytes(4 * MiB + 1, "crash-4m1"),
            h.pseudo_random_bytes(9 * MiB + 17, "crash-9m")]


def choose_content(rng: random.Random, shared: list[bytes]) -> bytes:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(shared)
    if roll < 0.75:
        return rng.randbytes(rng.randint(1, 8 * KiB))
    if roll < 0.94:
        return rng.randbytes(rng.randint(60 * KiB, 3 * MiB))
    return rng.randbytes(rng.randint(8 * MiB, 9 * MiB + 100))  # three chunks


def complete(r: requests.Response) -> bool:
    """Whether the whole body arrived (urllib3 1.x silently returns a body cut short when
    the server dies mid-response)."""
    length = r.headers.get("Content-Length")
    return length is None or int(length) == len(r.content)


def json_or_none(r: requests.Response) -> Optional[dict]:
    if not complete(r):
        return None
    try:
        body = r.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def worker(server: h.CairnServer, state: WorkerState, cycle: int, rng: random.Random,
           shared: list[bytes], sizes: dict, sizes_lock: threading.Lock,
           give_up_at: float) -> None:
    c = h.Client(server, server.admin_key)
    n = 0
    while time.monotonic() < give_up_at:
        n += 1
        roll = rng.random()
        keys = list(state.current)
        if roll < 0.55 or not keys:
            # Past MAX_KEYS_PER_WORKER keys, new uploads become overwrites (bounds disk use).
            overwrite = bool(keys) and (roll >= 0.40 or len(keys) >= MAX_KEYS_PER_WORKER)
            key = rng.choice(keys) if overwrite else f"w{state.index}/c{cycle}/n{n}"
            data = choose_content(rng, shared)
            sha = h.sha256_hex(data)
            with sizes_lock:
                sizes[sha] = len(data)
            try:
                r = c.upload(data, tenant=TENANT, namespace=NS, key=key, timeout=TIMEOUT)
            except requests.RequestException:
                state.uncertain[key] = Uncertain("upload", sha, len(data))
                return
            obj = json_or_none(r)
            if r.status_code != 201 and complete(r):
                state.failures.append(f"upload {key}: {r.status_code} {r.content[:200]!r}")
            if r.status_code != 201 or obj is None:  # refused, or cut off by the kill
                state.uncertain[key] = Uncertain("upload", sha, len(data))
                return
            if obj.get("content_hash") != "sha256:" + sha or obj.get("size_bytes") != len(data):
                state.failures.append(f"upload {key}: wrong object JSON {obj}")
            previous = state.current.get(key)
            if previous:
                state.superseded.append((previous.id, f"overwritten {key}"))
            state.current[key] = Known(obj["id"], sha, len(data))
            state.touched.add(key)
            state.counts["overwrite" if overwrite else "upload"] += 1
        elif roll < 0.80:
            key = rng.choice(keys)
            known = state.current[key]
            try:
                if rng.random() < 0.5:
                    r = c.delete(known.id, tenant=TENANT)
                else:
                    r = c.delete_by_key(NS, TENANT, key)
            except requests.RequestException:
                state.uncertain[key] = Uncertain("delete")
                return
            if r.status_code != 204 and not complete(r):
                state.uncertain[key] = Uncertain("delete")
                return
            if r.status_code != 204:
                state.failures.append(f"delete {key}: {r.status_code} {r.content[:200]!r}")
                state.uncertain[key] = Uncertain("delete")
                return
            del state.current[key]
            state.superseded.append((known.id, f"deleted {key}"))
            state.touched.add(key)
            state.counts["delete"] += 1
        else:
            key = rng.choice(keys)
            known = state.current[key]
            try:
                r = c.get(known.id, tenant=TENANT)
            except requests.RequestException:
                return
            if not complete(r):
                return  # cut off by the kill
            if r.status_code != 200 or h.sha256_hex(r.content) != known.sha:
                state.failures.append(f"read of committed {key} ({known.id}) while running: "
                                      f"{r.status_code}, {len(r.content)} bytes")
            state.counts["read"] += 1


def read_back(c: h.Client, key: str, known: Known) -> Optional[str]:
    """None if the object reads back whole and correct by id; otherwise what went wrong."""
    r = c.get(known.id, tenant=TENANT, stream=True)
    if r.status_code != 200:
        return f"{key} ({known.id}): GET -> {r.status_code} {r.content[:200]!r}"
    hasher, size = hashlib.sha256(), 0
    for block in r.iter_content(1 * MiB):
        hasher.update(block)
        size += len(block)
    if size != known.size or hasher.hexdigest() != known.sha:
        return f"{key} ({known.id}): read {size} bytes sha {hasher.hexdigest()[:12]}, " \
               f"expected {known.size} bytes sha {known.sha[:12]}"
    if r.headers.get("X-Content-SHA256", "").lower() != known.sha:
        return f"{key} ({known.id}): X-Content-SHA256 {r.headers.get('X-Content-SHA256')}"
    return None


def reconcile(c: h.Client, model: dict, states: list[WorkerState], sizes: dict,
              rng: random.Random) -> tuple[dict, list[str]]:
    """Checks the restarted store against what the workers know; returns the resolved
    model (key -> Known) and the failures."""
    failures = [f for s in states for f in s.failures]
    listing = c.list_all(namespace=NS, tenant=TENANT, limit=1000)
    keys_in_order = [o["key"] for o in listing]
    if keys_in_order != sorted(set(keys_in_order), key=lambda k: k.encode()):
        failures.append("listing is not strictly ordered by key")
    listed = {o["key"]: o for o in listing}

    expected: dict = {}
    uncertain: dict = {}
    must_be_gone = []
    touched = set()
    for s in states:
        expected.update(s.current)
        uncertain.update(s.uncertain)
        must_be_gone += s.superseded
        touched |= s.touched | set(s.uncertain)

    resolved: dict = {}
    for key in sorted(set(expected) | set(uncertain) | set(listed) | set(model)):
        obj = listed.get(key)
        known = expected.get(key)
        seen = None
        if obj is not None:
            sha = obj["content_hash"].removeprefix("sha256:")
            seen = Known(obj["id"], sha, obj["size_bytes"])
            if sizes.get(sha) != obj["size_bytes"]:
                failures.append(f"{key}: listed with {obj['size_bytes']} bytes and hash "
                                f"{sha[:12]}, which no client uploaded")
                continue
        u = uncertain.get(key)
        if u is None:
            if seen != known:
                failures.append(f"{key}: expected {known}, found {seen}")
                continue
        else:
            keeps_previous = (seen is None and known is None) or \
                (seen is not None and known is not None and seen.id == known.id)
            completed = (u.op == "delete" and seen is None) or \
                (u.op == "upload" and seen is not None and seen.sha == u.sha and
                 (known is None or seen.id != known.id))
            if not (keeps_previous or completed):
                failures.append(f"{key}: after an unanswered {u.op}, expected {known} or the "
                                f"{u.op}'s outcome, found {seen}")
                continue
            if completed and known is not None and not keeps_previous:
                must_be_gone.append((known.id, f"replaced by an unanswered {u.op} of {key}"))
        if seen is not None:
            resolved[key] = seen

    for object_id, why in must_be_gone:
        status = c.get(object_id, tenant=TENANT).status_code
        if status != 404:
            failures.append(f"{object_id} ({why}) answers {status}, expected 404")

    others = [k for k in resolved if k not in touched]
    to_read = [k for k in resolved if k in touched] + rng.sample(others,
                                                                min(SAMPLE_READS, len(others)))
    for key in to_read:
        problem = read_back(c, key, resolved[key])
        if problem:
            failures.append(problem)
    for key in rng.sample(sorted(resolved), min(5, len(resolved))):
        r = c.get_by_key(NS, TENANT, key)
        if r.status_code != 200 or h.sha256_hex(r.content) != resolved[key].sha:
            failures.append(f"{key}: GET by key -> {r.status_code}")
    return resolved, failures


def test_kill_minus_9_never_loses_or_tears_objects(crash_server):
    server = crash_server
    rng = random.Random(SEED)
    shared = shared_contents()
    sizes = {h.sha256_hex(d): len(d) for d in shared}
    sizes_lock = threading.Lock()
    model: dict = {}  # key -> Known, resolved after each restart
    totals = {"upload": 0, "overwrite": 0, "delete": 0, "read": 0, "unanswered": 0}
    started = time.monotonic()
    server.start()
    for cycle in range(CYCLES):
        states = [WorkerState(i, {k: v for k, v in model.items() if k.startswith(f"w{i}/")})
                  for i in range(WORKERS)]
        run_s = rng.uniform(0.5, 3.0)
        give_up_at = time.monotonic() + run_s + 60
        threads = [threading.Thread(
            target=worker, args=(server, s, cycle, random.Random(rng.random()), shared, sizes,
                                 sizes_lock, give_up_at), daemon=True) for s in states]
        for t in threads:
            t.start()
        time.sleep(run_s)
        server.kill9()
        for t in threads:
            t.join(max(0.1, give_up_at + 5 - time.monotonic()))
        assert not any(t.is_alive() for t in threads), "a worker hung after the kill"

        server.start()
        c = h.Client(server, server.admin_key)
        model, failures = reconcile(c, model, states, sizes, rng)
        for s in states:
            for kind, n in s.counts.items():
                totals[kind] += n
            totals["unanswered"] += len(s.uncertain)
        print(f"cycle {cycle}: ran {run_s:.1f} s, {sum(sum(s.counts.values()) for s in states)}"
              f" ops, {len(model)} live objects")
        assert not failures, (f"cycle {cycle} (seed {SEED}): {len(failures)} failures:\n" +
                              "\n".join(failures[:15]))

    assert totals["upload"] >= CYCLES * 2 and totals["delete"] >= CYCLES, totals
    assert server.stop() == 0, server.problems
    h.gc_now(server.data_dir, 0)
    code, report = h.fsck_json(server.data_dir)
    assert code == 0 and report["ok"] is True, report
    for field_name in ("missing_chunks", "corrupt_chunks", "orphaned_chunks",
                       "wrong_ref_counts", "stale_temp_files"):
        assert report[field_name] == [], (field_name, report[field_name][:10])
    assert report["objects_checked"] >= len(model), report

    # After GC with no grace period everything still reads back.
    server.start()
    c = h.Client(server, server.admin_key)
    listed = {o["key"]: o["id"] for o in c.list_all(namespace=NS, tenant=TENANT, limit=1000)}
    assert listed == {k: v.id for k, v in model.items()}
    problems = [p for p in (read_back(c, k, v) for k, v in model.items()) if p]
    assert not problems, problems[:10]
    print(f"\n{CYCLES} cycles in {time.monotonic() - started:.0f} s: {totals}, "
          f"{len(model)} objects at the end")
