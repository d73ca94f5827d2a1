"""SIGTERM under upload load.

Each round starts `cairn serve`, runs 64 concurrent uploaders (each uploads objects of
40 KiB-1 MiB, past the inline threshold, with its own keys, one after another) and sends
SIGTERM at a random moment while they run. Then:
  * the server exits with status 0 within --shutdown-timeout plus a margin (no crash, no
    sanitizer report in its log);
  * after a restart every acknowledged (201) upload reads back byte-identical;
  * an upload that got an error status is not visible;
  * an upload whose response was lost is either absent or complete, never partial.

CAIRN_SIGTERM_ROUNDS (default 20) sets the number of rounds; CAIRN_SIGTERM_BIN runs
another binary (the ASan build in CI).
"""
from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import requests

import cairn_harness as h
from cairn_harness import KiB, MiB

ROUNDS = int(os.environ.get("CAIRN_SIGTERM_ROUNDS", 20))
BIN = os.environ.get("CAIRN_SIGTERM_BIN")
UPLOADERS = 64
SHUTDOWN_TIMEOUT_S = 10
TENANT = "term"
NS = "term"
MAX_UPLOADS_PER_WORKER = 30  # a bound; the signal comes first, mid-load
# Under ASan everything is several times slower: smaller bodies keep a round short.
MAX_BODY = (512 * KiB) if BIN else (1 * MiB)
BASES = [h.pseudo_random_bytes(MAX_BODY, f"sigterm-base-{i}") for i in range(4)]


def body_for(seed: str, size: int) -> bytes:
    # A distinct object per upload without generating megabytes in Python each time.
    tag = hashlib.sha256(seed.encode()).digest()
    base = BASES[tag[0] % len(BASES)]
    return tag + base[:max(0, size - len(tag))]


def run_round(tmp_path: Path, round_index: int, rng: random.Random) -> dict:
    data_dir = tmp_path / f"round{round_index}" / "data"
    extra_args = ["--shutdown-timeout", str(SHUTDOWN_TIMEOUT_S)]
    server = h.CairnServer(data_dir, extra_args=extra_args)
    server.start()
    stop_at = threading.Event()
    lock = threading.Lock()
    outcomes: list[tuple[str, str, int, object]] = []  # key, sha, size, status or exception

    def uploader(index: int) -> None:
        client = h.Client(server, server.admin_key)
        local = random.Random(f"{round_index}-{index}")
        n = 0
        while not stop_at.is_set() and n < MAX_UPLOADS_PER_WORKER:
            key = f"u{index}/{n}"
            size = local.randint(40 * KiB, MAX_BODY)
            data = body_for(f"{round_index}-{index}-{n}", size)
            sha = hashlib.sha256(data).hexdigest()
            try:
                r = client.upload(data, tenant=TENANT, namespace=NS, key=key,
                                  timeout=(5.0, 60.0))
                status: object = r.status_code
                if r.status_code == 201:
                    assert r.json()["content_hash"] == "sha256:" + sha
            except requests.RequestException as e:
                status = e
            with lock:
                outcomes.append((key, sha, size, status))
            if not isinstance(status, int) or status != 201:
                return  # the server is going away: this worker is done
            n += 1

    threads = [threading.Thread(target=uploader, args=(i,), daemon=True)
               for i in range(UPLOADERS)]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.2, 1.0))
    server.terminate()
    rc = server.wait_exit(SHUTDOWN_TIMEOUT_S + 20)
    stop_at.set()
    for t in threads:
        t.join(90)
    assert rc is not None, f"round {round_index}: no exit within the shutdown timeout + 20 s"
    assert rc == 0, (f"round {round_index}: exit status {rc} after SIGTERM\n"
                     f"{server.current_log_tail()}")
    server.scan_logs()
    assert not server.problems, "\n".join(server.problems)

    # Restart on the same data and check what the clients were told.
    server.start()
    client = h.Client(server, server.admin_key)
    counts = {"acknowledged": 0, "refused": 0, "lost": 0, "lost_but_committed": 0}
    try:
        for key, sha, size, status in outcomes:
            r = client.get_by_key(NS, TENANT, key)
            if status == 201:
                counts["acknowledged"] += 1
                assert r.status_code == 200, h.describe(r, f"GET of acknowledged {key}")
                assert hashlib.sha256(r.content).hexdigest() == sha, f"{key}: wrong bytes"
            elif isinstance(status, int):
                counts["refused"] += 1
                assert r.status_code == 404, (f"{key}: answered {status} but is visible "
                                              f"({r.status_code})")
            else:
                counts["lost"] += 1
                assert r.status_code in (200, 404), h.describe(r, f"GET of {key}")
                if r.status_code == 200:
                    counts["lost_but_committed"] += 1
                    assert len(r.content) == size and \
                        hashlib.sha256(r.content).hexdigest() == sha, f"{key}: partial object"
    finally:
        problems = h.finish_servers([server])
    assert not problems, "\n".join(problems)
    return counts


def test_sigterm_during_concurrent_uploads(tmp_path, monkeypatch):
    if BIN:
        monkeypatch.setattr(h, "CAIRN_BIN", Path(BIN))
    rng = random.Random(7)
    totals: dict[str, int] = {}
    with h.Watchdog("sigterm test", 60 * 20):
        for i in range(ROUNDS):
            counts = run_round(tmp_path, i, rng)
            for name, value in counts.items():
                totals[name] = totals.get(name, 0) + value
    print(f"\nSIGTERM rounds: {ROUNDS}, outcomes: {totals}")
    # The load must really have been in flight when the signal came.
    assert totals["acknowledged"] > 0
