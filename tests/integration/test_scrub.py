"""The scrubber: `cairn scrub` verifies every chunk on demand, and `cairn serve` does it in
the background at a bounded rate. Damage found at rest takes the same path as damage found
by a read: quarantined, marked (reads answer an error before the status line), logged and
counted; progress shows in /metrics and in `cairn status`.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import time
from pathlib import Path

import cairn_harness as h
import prom_text
from cairn_harness import MiB
from test_integrity import chunk_path, flip_byte, quarantined

CHUNK = h.CHUNK_SIZE_BYTES
WAIT_S = 60.0


def scrape(client: h.Client) -> dict:
    r = client.request("GET", "/metrics")
    assert r.status_code == 200
    return prom_text.parse(r.text)


def wait_for(what: str, check, timeout: float = WAIT_S):
    """Polls `check` (bounded) until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def test_cairn_scrub_finds_damage_beside_a_running_server(server_factory, tenant):
    # No background scrubbing: only the command may find the damage.
    srv = server_factory(gc_interval=0, extra_args=["--scrub-rate", "0"])
    c = h.Client(srv, srv.admin_key)
    data = h.pseudo_random_bytes(9 * MiB + 5, "scrub-on-demand")
    obj = c.put(data, tenant=tenant, key="k")

    r = h.run_cli(srv.data_dir, ["scrub"])
    assert r.returncode == 0, h.cli_summary(r)
    assert "clean" in r.stdout and "chunks verified: 3 " in r.stdout, h.cli_summary(r)

    flip_byte(chunk_path(srv.data_dir, data, 1), 12345)
    digest = hashlib.sha256(data[CHUNK:2 * CHUNK]).hexdigest()
    r = h.run_cli(srv.data_dir, ["scrub"])
    assert r.returncode == 1, h.cli_summary(r)
    assert "damage found" in r.stdout and digest in r.stdout, h.cli_summary(r)
    assert any(p.name.startswith(digest) for p in quarantined(srv.data_dir))
    # The server sees the mark: an error status, never a 200 and a cut.
    r = c.get(obj["id"], tenant=tenant)
    assert r.status_code == 500 and r.json()["error"]["code"] == "DataLoss", h.describe(r)
    r = c.get(obj["id"], tenant=tenant, headers={"Range": f"bytes={CHUNK}-{CHUNK + 9}"})
    assert r.status_code == 500, h.describe(r)
    r = c.get(obj["id"], tenant=tenant, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == data[:100]

    # Still damaged on the next pass (not re-reported), as JSON.
    r = h.run_cli(srv.data_dir, ["scrub", "--json", "--rate", "512MiB"])
    assert r.returncode == 1, h.cli_summary(r)
    report = json.loads(r.stdout)
    assert report["damaged"] == 1 and not report["clean"] and report["complete"], report
    assert report["chunks_verified"] == 3

    # An upload of the same content heals it; the next pass is clean again.
    r = c.upload(data, tenant=tenant, key="again")
    assert r.status_code == 201, h.describe(r)
    r = h.run_cli(srv.data_dir, ["scrub"])
    assert r.returncode == 0, h.cli_summary(r)
    assert c.get(obj["id"], tenant=tenant).content == data

    r = h.run_cli(srv.data_dir, ["status"])
    assert r.returncode == 0, h.cli_summary(r)
    assert "scrub: last pass completed" in r.stdout and "(on-demand)" in r.stdout, r.stdout
    mode = stat.S_IMODE(os.stat(srv.data_dir / "scrub.state").st_mode)
    assert mode == 0o600, oct(mode)


def test_background_scrub_finds_damage_by_itself(server_factory, tenant):
    srv = server_factory(gc_interval=0,
                         extra_args=["--scrub-rate", "256MiB", "--scrub-interval", "1s"])
    c = h.Client(srv, srv.admin_key)
    data = h.pseudo_random_bytes(6 * MiB, "scrub-background")
    obj = c.put(data, tenant=tenant, key="k")

    def ok_chunks():
        families = scrape(c)
        return families["cairn_scrub_chunks_total"].total(result="ok") >= 2

    wait_for("a background pass over the chunks", ok_chunks)
    flip_byte(chunk_path(srv.data_dir, data, 0), 7)
    digest = hashlib.sha256(data[:CHUNK]).hexdigest()

    def damaged():
        families = scrape(c)
        return families["cairn_scrub_chunks_total"].total(result="damaged") >= 1

    wait_for("the scrubber to find the damage", damaged)
    families = scrape(c)
    assert families["cairn_chunk_verify_failures_total"].total(reason="checksum_mismatch") >= 1
    assert families["cairn_scrub_bytes_total"].total() >= 2 * MiB
    assert families["cairn_scrub_last_pass_completed_timestamp_seconds"].total() > 0
    assert 0 <= families["cairn_scrub_pass_progress_ratio"].total() <= 1
    assert any(p.name.startswith(digest) for p in quarantined(srv.data_dir))
    assert "found by the scrubber" in srv.all_logs()
    r = c.get(obj["id"], tenant=tenant)
    assert r.status_code == 500 and r.json()["error"]["code"] == "DataLoss", h.describe(r)

    def status_shows_damage():
        r = h.run_cli(srv.data_dir, ["status"])
        assert r.returncode == 0, h.cli_summary(r)
        lines = [line for line in r.stdout.splitlines() if line.startswith("scrub: last pass")]
        return lines and "(background)" in lines[0] and " 1 damaged" in lines[0] and lines[0]

    wait_for("cairn status to show the damage", status_shows_damage)


def test_background_scrub_is_paced_and_stops_promptly(server_factory, tenant):
    # 1 KiB/s over a 5 MiB chunk: the pass cannot finish while the test runs, and it must
    # not hold up a shutdown.
    srv = server_factory(gc_interval=0,
                         extra_args=["--scrub-rate", "1KiB", "--scrub-interval", "1s"])
    c = h.Client(srv, srv.admin_key)
    data = h.pseudo_random_bytes(5 * MiB, "scrub-paced")
    c.put(data, tenant=tenant, key="k")
    srv.stop()
    srv.start()
    time.sleep(2)
    families = scrape(c)
    assert families["cairn_scrub_passes_total"].total() == 0
    # At most one chunk read before the pacing sleep.
    assert families["cairn_scrub_bytes_total"].total() <= CHUNK
    r = h.run_cli(srv.data_dir, ["status"])
    assert r.returncode == 0, h.cli_summary(r)
    started = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - started < 20


def test_bad_scrub_settings_are_refused(tmp_path: Path):
    for args in (["--scrub-rate", "fast"], ["--scrub-interval", "0"],
                 ["--scrub-interval", "1w"]):
        r = subprocess.run([str(h.CAIRN_BIN), "serve", "--data-dir", str(tmp_path / "d"),
                            *args], capture_output=True, text=True, timeout=30,
                           env=h.base_env({}))
        assert r.returncode == 2, r
        assert args[0] in r.stderr, r.stderr
    r = h.run_cli(tmp_path / "d2", ["scrub"], ["--rate", "lots"])
    assert r.returncode == 2, h.cli_summary(r)
