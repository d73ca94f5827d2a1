"""`cairn bench` smoke run: a few seconds at tiny sizes so the tool cannot rot. Timing is
never asserted here; benchmarks measure speed, tests check that the tool works."""
from __future__ import annotations

import json
import subprocess

import cairn_harness as h


def run_bench(srv, *args: str) -> dict:
    cmd = [str(h.CAIRN_BIN), "bench", "--endpoint", srv.url, "--key", srv.admin_key,
           "--tenant", "benchsmoke", "--namespace", "bench", "--quiet", "--json", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return json.loads(r.stdout)


def test_bench_put_get_mixed_and_cleanup(server_factory):
    srv = server_factory()
    c = h.Client(srv, srv.admin_key)

    put = run_bench(srv, "--op", "put", "--size", "1KiB-8KiB", "-c", "4", "--count", "200")
    assert put["operations"]["put"]["ops"] == 200
    assert put["operations"]["put"]["errors"] == 0
    assert put["operations"]["put"]["p50_ms"] > 0

    get = run_bench(srv, "--op", "get", "--size", "4KiB", "-c", "4", "--duration", "1",
                    "--objects", "50")
    ops = get["operations"]["get"]
    assert ops["ops"] > 0 and ops["errors"] == 0
    assert ops["mb_per_second"] > 0

    mixed = run_bench(srv, "--op", "mixed", "--mix", "put=1,get=3,stat=1,list=1,delete=1",
                      "--size", "2KiB", "-c", "4", "--duration", "1", "--objects", "30",
                      "--identical")
    assert set(mixed["operations"]) <= {"put", "get", "stat", "list", "delete"}
    assert all(op["errors"] == 0 for op in mixed["operations"].values()), mixed

    # Every run cleans up after itself.
    r = c.list(namespace="bench", tenant="benchsmoke")
    assert r.status_code == 200 and r.json()["objects"] == [], r.text[:500]


def test_bench_reports_a_bad_key(server_factory):
    srv = server_factory()
    cmd = [str(h.CAIRN_BIN), "bench", "--endpoint", srv.url, "--key", "cairn_bad",
           "--op", "get", "--count", "5", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
