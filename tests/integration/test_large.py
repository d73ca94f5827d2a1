"""A 2 GiB object streamed in and out while the server's resident memory stays flat.

Run with: /usr/bin/python3 -m pytest tests/integration -m large
(size override: CAIRN_LARGE_BYTES)."""
from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

import cairn_harness as h
from cairn_harness import GiB, MiB, describe

pytestmark = [pytest.mark.large, pytest.mark.time_limit(1800)]

SIZE_BYTES = int(os.environ.get("CAIRN_LARGE_BYTES", 2 * GiB))
MAX_RSS_GROWTH_BYTES = 64 * MiB


class RssSampler(threading.Thread):
    def __init__(self, server: h.CairnServer, interval_s: float = 0.1):
        super().__init__(daemon=True)
        self.server = server
        self.interval_s = interval_s
        self.peak = 0
        self.samples = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.peak = max(self.peak, self.server.read_vm_rss_bytes())
                self.samples += 1
            except (OSError, AssertionError):
                return
            self.stop_event.wait(self.interval_s)


def test_two_gib_streamed_upload_and_download(server_factory, tenant):
    srv = server_factory()
    c = h.Client(srv, srv.admin_key)
    # Warm up allocators and thread pools with a multi-chunk object first.
    warm = h.pseudo_random_bytes(12 * MiB, "warm")
    c.put(warm, tenant=tenant, namespace="large", key="warm")
    assert c.get_by_key("large", tenant, "warm").content == warm
    del warm
    time.sleep(0.5)
    baseline = srv.read_vm_rss_bytes()
    sampler = RssSampler(srv)
    sampler.start()
    try:
        body = h.PseudoRandomStream(SIZE_BYTES, seed=2024)
        started = time.monotonic()
        r = c.upload(body, tenant=tenant, namespace="large", key="two-gib",
                     timeout=(10, 900))
        upload_s = time.monotonic() - started
        assert r.status_code == 201, describe(r)
        assert body.bytes_read == SIZE_BYTES
        obj = r.json()
        assert obj["size_bytes"] == SIZE_BYTES
        assert obj["content_hash"] == "sha256:" + body.sha256

        started = time.monotonic()
        r = c.request("GET", f"/v1/objects/{obj['id']}", headers={"X-Tenant": tenant},
                      stream=True, timeout=(10, 300))
        assert r.status_code == 200, describe(r)
        assert int(r.headers["Content-Length"]) == SIZE_BYTES
        hasher, received = hashlib.sha256(), 0
        for block in r.iter_content(4 * MiB):
            hasher.update(block)
            received += len(block)
        download_s = time.monotonic() - started
        assert received == SIZE_BYTES
        assert hasher.hexdigest() == body.sha256
    finally:
        sampler.stop_event.set()
        sampler.join(5)
    growth = sampler.peak - baseline
    print(f"\n{SIZE_BYTES / GiB:.2f} GiB: upload {SIZE_BYTES / MiB / upload_s:.0f} MiB/s, download "
          f"{SIZE_BYTES / MiB / download_s:.0f} MiB/s, RSS baseline {baseline / MiB:.0f} MiB, "
          f"peak {sampler.peak / MiB:.0f} MiB ({sampler.samples} samples)")
    assert sampler.samples > 10
    assert growth < MAX_RSS_GROWTH_BYTES, \
        f"server RSS grew by {growth / MiB:.0f} MiB while streaming {SIZE_BYTES / GiB:.1f} GiB"
    assert c.delete(obj["id"], tenant=tenant).status_code == 204
