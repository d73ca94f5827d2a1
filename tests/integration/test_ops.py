"""Operations: probes, readiness failures, Prometheus metrics, rate limiting, graceful
shutdown, configuration by flag and environment, and the command line (keys, status,
gc, fsck) with the server stopped and running."""
from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

import cairn_harness as h
import prom_text
from cairn_harness import KiB, MiB, assert_error, describe

REQUIRED_FAMILIES = {
    "cairn_requests_total": "counter",
    "cairn_request_duration_seconds": "histogram",
    "cairn_objects_total": None,  # a gauge or counter: either is fine
    "cairn_storage_bytes": "gauge",
    "cairn_gc_runs_total": "counter",
    "cairn_gc_deleted_blobs_total": "counter",
    "cairn_throttled_requests_total": "counter",
}


def scrape(base_url: str) -> dict:
    r = h.new_session().get(base_url + "/metrics", timeout=10)
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    return prom_text.parse(r.text)


def metric_total(base_url: str, family: str, suffix: str = "", **labels) -> float:
    families = scrape(base_url)
    return families[family].total(suffix, **labels) if family in families else 0.0


def test_health_and_ready(client):
    anonymous = client.clone(key=None)
    r = anonymous.request("GET", "/health")
    assert r.status_code == 200, describe(r)
    # No volume on a plain object store; both layers beneath answer.
    assert r.json() == {"status": "ok",
                        "storage": {"volume": None, "mounts_alive": 0,
                                    "metadata": {"healthy": True},
                                    "chunk_store": {"healthy": True}}}, r.json()
    r = anonymous.request("GET", "/ready")
    assert r.status_code == 200, describe(r)


@pytest.mark.parametrize("storage_class", ["hot", "cold"])
def test_ready_is_503_while_a_storage_root_is_unwritable(server_factory, tenant, storage_class):
    srv = server_factory()
    c = h.Client(srv, srv.admin_key)
    before = c.put(b"x" * 100 * KiB, tenant=tenant, namespace="ready", key="before",
                   storage_class=storage_class)
    root = srv.data_dir / storage_class
    assert root.is_dir(), f"expected the {storage_class} storage root at {root}"
    moved = root.with_name(storage_class + ".moved-away")
    root.rename(moved)
    root.write_bytes(b"a regular file where the storage root was\n")
    try:
        def not_ready():
            r = c.request("GET", "/ready")
            return [r] if r.status_code == 503 else None  # (a 503 Response is falsy)

        found = h.wait_until(not_ready, timeout=10)
        assert found, "/ready stayed 200 with an unwritable storage root for 10 s"
        assert found[0].headers.get("Content-Type", "").startswith("application/json")
        body = found[0].json()
        assert body.get("status") == "unavailable", body
        assert isinstance(body.get("reason"), str) and body["reason"], body
        up = c.upload(h.pseudo_random_bytes(300 * KiB, "unready"), tenant=tenant,
                      namespace="ready", key="during", storage_class=storage_class)
        assert up.status_code >= 500, describe(up, "upload into a broken root")
        assert up.status_code != 201
    finally:
        root.unlink()
        moved.rename(root)
    ok = h.wait_until(lambda: c.request("GET", "/ready").status_code == 200, timeout=10)
    assert ok, "/ready did not recover within 10 s after the root was restored"
    assert c.get_by_key("ready", tenant, "during").status_code == 404
    assert c.get(before["id"], tenant=tenant).status_code == 200
    c.put(b"after", tenant=tenant, namespace="ready", key="after", storage_class=storage_class)


@pytest.mark.skipif(h.using_postgres(), reason="SQLite-specific (its WAL file is made "
                    "immutable); tests/multinode/test_database_loss.py covers PostgreSQL")
def test_ready_is_503_while_the_database_cannot_commit(server_factory, tenant):
    """An immutable write-ahead log (chattr +i, which binds root too) stands in for a
    database that can no longer commit: a full disk, a read-only remount, an I/O error."""
    srv = server_factory()
    c = h.Client(srv, srv.admin_key)
    before = c.put(b"y" * 10 * KiB, tenant=tenant, namespace="ready-db", key="before")
    wal = srv.data_dir / "meta.db-wal"
    assert wal.exists(), "expected SQLite in WAL mode beside the data"
    if subprocess.run(["chattr", "+i", str(wal)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support the immutable attribute")
    try:
        def not_ready():
            r = c.request("GET", "/ready")
            return [r] if r.status_code == 503 else None

        found = h.wait_until(not_ready, timeout=10)
        assert found, "/ready stayed 200 while the database could not commit"
        body = found[0].json()
        assert body.get("status") == "unavailable" and "metadata" in body.get("reason", ""), body
        up = c.upload(b"z" * 100, tenant=tenant, namespace="ready-db", key="during")
        assert up.status_code >= 500, describe(up, "upload while the database cannot commit")
    finally:
        subprocess.run(["chattr", "-i", str(wal)], check=True)
    ok = h.wait_until(lambda: c.request("GET", "/ready").status_code == 200, timeout=10)
    assert ok, "/ready did not recover after the database became writable again"
    assert c.get_by_key("ready-db", tenant, "during").status_code == 404
    assert c.get(before["id"], tenant=tenant).status_code == 200
    c.put(b"after", tenant=tenant, namespace="ready-db", key="after")


def test_metrics_exposition(client, tenant):
    ns = "metrics-" + tenant
    sizes = [10, 100 * KiB, 5 * MiB]
    for i, size in enumerate(sizes):
        client.put(h.pseudo_random_bytes(size, f"m{i}"), tenant=tenant, namespace=ns,
                   key=f"m/{i}")
    client.get_by_key(ns, tenant, "m/0")
    client.get_by_key(ns, tenant, "missing")
    families = scrape(client.base)
    for name, kind in REQUIRED_FAMILIES.items():
        assert name in families, f"/metrics lacks {name}"
        if kind:
            assert families[name].type == kind, (name, families[name].type)

    def counted():
        f = scrape(client.base)
        return (f["cairn_requests_total"].total(method="POST", status="201", namespace=ns),
                f["cairn_request_duration_seconds"].total("_count", method="POST",
                                                          namespace=ns))

    assert h.wait_until(lambda: counted() == (3, 3), timeout=3), \
        f"requests_total / duration _count for 3 uploads in {ns}: {counted()}"
    requests_family = scrape(client.base)["cairn_requests_total"]
    labels = set().union(*(s.labels for s in requests_family.samples))
    assert {"method", "status", "namespace"} <= labels, labels

    def objects_gauge():
        f = scrape(client.base)["cairn_objects_total"]
        return sum(s.value for s in f.samples if s.labels.get("tenant") == tenant and
                   s.labels.get("namespace") == ns and
                   s.labels.get("status", "").lower() == "committed")

    assert h.wait_until(lambda: objects_gauge() == 3, timeout=10), \
        f"cairn_objects_total{{tenant={tenant},namespace={ns},status=committed}} = " \
        f"{objects_gauge()}, expected 3"

    def storage_gauge():
        return scrape(client.base)["cairn_storage_bytes"].total(storage_class="hot",
                                                                 namespace=ns)

    assert h.wait_until(lambda: storage_gauge() == sum(sizes), timeout=10), \
        f"cairn_storage_bytes{{storage_class=hot,namespace={ns}}} = {storage_gauge()}"


def test_metrics_parser_rejects_broken_expositions():
    good = ('# HELP x_seconds Latency.\n# TYPE x_seconds histogram\n'
            'x_seconds_bucket{le="0.1"} 1\nx_seconds_bucket{le="+Inf"} 2\n'
            'x_seconds_sum 0.3\nx_seconds_count 2\n# TYPE y_total counter\ny_total{a="b"} 4\n')
    prom_text.parse(good)
    broken = [
        good.replace('le="0.1"} 1', 'le="0.1"} 3'),            # not cumulative
        good.replace('x_seconds_count 2', 'x_seconds_count 5'),  # count != +Inf bucket
        good.replace('{le="+Inf"}', '{le="1"}'),                # no +Inf bucket
        good + 'y_total{a="b"} 4\n',                            # duplicate series
        good + "x_seconds_sum 1\n",                             # family not grouped
        good.replace('{a="b"}', '{a=b}'),                       # unquoted label value
        good.replace("counter", "countr"),                      # unknown type
        good.replace("y_total{a=\"b\"} 4", "y_total{a=\"b\"} four"),
        good[:-1],                                              # no final newline
    ]
    for text in broken:
        with pytest.raises(prom_text.ExpositionError):
            prom_text.parse(text)


def test_gc_runs_and_reclaims_deleted_chunks(server_factory, tenant):
    srv = server_factory(gc_interval=1, gc_grace=0)
    c = h.Client(srv, srv.admin_key)
    data = h.pseudo_random_bytes(2 * MiB, "gc-me")
    runs_before = metric_total(srv.url, "cairn_gc_runs_total")
    deleted_before = metric_total(srv.url, "cairn_gc_deleted_blobs_total")
    obj = c.put(data, tenant=tenant, namespace="gc", key="gc/1")
    assert h.chunk_bytes_on_disk(srv.data_dir, "hot") >= len(data)
    assert c.delete(obj["id"], tenant=tenant).status_code == 204

    def reclaimed():
        return (metric_total(srv.url, "cairn_gc_deleted_blobs_total") > deleted_before and
                h.chunk_bytes_on_disk(srv.data_dir, "hot") < 64 * KiB)

    assert h.wait_until(reclaimed, timeout=15, interval=0.5), \
        "a deleted object's chunk was not collected within 15 s (gc-interval 1, grace 0)"
    assert h.wait_until(lambda: metric_total(srv.url, "cairn_gc_runs_total") >= runs_before + 2,
                        timeout=5), "cairn_gc_runs_total did not count the passes"
    # Identical content uploaded again after its chunk was collected is whole.
    again = c.put(data, tenant=tenant, namespace="gc", key="gc/2")
    r = c.get(again["id"], tenant=tenant)
    assert r.status_code == 200 and r.content == data
    code, report = h.fsck_json(srv.data_dir)
    assert code == 0, report


def test_rate_limit_answers_429_and_counts(server_factory, tenant):
    srv = server_factory(rate_limit=5)
    c = h.Client(srv, srv.admin_key)
    statuses, retry_after = [], []
    for _ in range(50):
        r = c.list(namespace="rl", tenant=tenant)
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert_error(r, 429, "throttled list")
            assert "Retry-After" in r.headers, describe(r)
            assert re.fullmatch(r"\d+", r.headers["Retry-After"]), r.headers["Retry-After"]
            retry_after.append(int(r.headers["Retry-After"]))
    throttled = statuses.count(429)
    assert set(statuses) <= {200, 429}, statuses
    assert 5 <= statuses.count(200) <= 25, statuses
    assert throttled >= 20, statuses
    assert all(1 <= s <= 60 for s in retry_after), retry_after

    # Another tenant has its own bucket; probes are never limited.
    assert c.list(namespace="rl", tenant=tenant + "-other").status_code == 200
    assert all(c.request("GET", "/health").status_code == 200 for _ in range(30))
    count = h.wait_until(
        lambda: metric_total(srv.url, "cairn_throttled_requests_total", tenant=tenant) ==
        throttled, timeout=3)
    assert count, (f"cairn_throttled_requests_total{{tenant={tenant}}} = "
                   f"{metric_total(srv.url, 'cairn_throttled_requests_total', tenant=tenant)}"
                   f", {throttled} requests got 429")
    time.sleep(2.5)
    assert c.list(namespace="rl", tenant=tenant).status_code == 200


def test_sigterm_lets_an_in_flight_upload_finish(server_factory, tenant):
    srv = server_factory()
    c = h.Client(srv, srv.admin_key)
    body = h.pseudo_random_bytes(512 * KiB, "slow-upload")
    pieces = [body[i:i + 32 * KiB] for i in range(0, len(body), 32 * KiB)]  # 16 pieces
    late = {}

    def late_upload():
        try:
            late["status"] = h.Client(srv, srv.admin_key).upload(
                b"too late", tenant=tenant, namespace="term", key="late",
                timeout=(3, 10)).status_code
        except Exception as e:  # noqa: BLE001 - refused or reset is the expected outcome
            late["error"] = repr(e)

    late_thread = threading.Thread(target=late_upload, daemon=True)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(h.raw_upload_head(srv.admin_key, tenant, "term", "slow",
                                       f"Content-Length: {len(body)}\r\n\r\n".encode()))
        for i, piece in enumerate(pieces):
            sock.sendall(piece)
            if i == 2:
                srv.terminate()
            if i == 6:
                late_thread.start()
            time.sleep(0.125)
        status, _, response = h.read_http_response(sock, timeout=20)
    assert status == 201, f"in-flight upload after SIGTERM got {status}: {response[:300]!r}"
    obj = json.loads(response)
    assert obj["size_bytes"] == len(body)
    assert obj["content_hash"] == "sha256:" + h.sha256_hex(body)
    rc = srv.wait_exit(15)
    assert rc == 0, f"server exit status after SIGTERM: {rc}"
    late_thread.join(20)
    assert late.get("status") != 201, "a request sent after SIGTERM was accepted"

    srv.start()
    c = h.Client(srv, srv.admin_key)
    r = c.get(obj["id"], tenant=tenant)
    assert r.status_code == 200 and r.content == body
    assert c.get_by_key("term", tenant, "late").status_code == 404


def test_generated_admin_key(server_factory):
    srv = server_factory(admin_key=None)
    key_file = srv.data_dir / "admin.key"
    printed = h.GENERATED_ADMIN_KEY_LINE.findall(srv.all_logs())
    assert len(printed) == 1, "the generated admin key was not printed exactly once"
    key = printed[0]
    match = h.KEY_PATTERN.match(key)
    h.register_secret(match.group(2), "generated admin key")
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, oct(key_file.stat().st_mode)
    c = h.Client(srv, key)
    obj = c.put(b"admin", tenant="anyone", namespace="adm", key="k")
    assert c.get(obj["id"], tenant="anyone").content == b"admin"

    srv.stop()
    first_logs = len(srv.log_files)
    srv.start()
    again = "".join(srv.log_text(p) for p in srv.log_files[first_logs:])
    assert not h.GENERATED_ADMIN_KEY_LINE.search(again), "a second key was printed on restart"
    assert key_file.read_text().strip() == key
    assert h.Client(srv, key).get(obj["id"], tenant="anyone").status_code == 200


def test_configuration_from_environment(server_factory, tmp_path, tenant):
    if h.using_postgres():
        # The harness made a fresh database; CAIRN_META must be what puts the rows there.
        srv = server_factory(config_via_env=True, gc_interval=1, gc_grace=0, rate_limit=1000)
        c = h.Client(srv, srv.admin_key)
        obj = c.put(b"env", tenant=tenant, namespace="env", key="k")
        rows = h.psql(srv.meta_url, "SELECT key FROM objects WHERE tenant = '%s'" % tenant)
        assert rows.split() == ["k"], f"CAIRN_META was not used: {rows!r}"
        assert not (srv.data_dir / "meta.db").exists(), "a SQLite database was created"
        assert c.get(obj["id"], tenant=tenant).content == b"env"
        assert (srv.data_dir / "hot").is_dir(), "CAIRN_DATA_DIR was not used"
        return
    meta_dir = tmp_path / "elsewhere"
    meta_dir.mkdir()
    meta_db = meta_dir / "meta-from-env.db"
    srv = server_factory(config_via_env=True, meta_url=f"sqlite://{meta_db}", gc_interval=1,
                         gc_grace=0, rate_limit=1000)
    c = h.Client(srv, srv.admin_key)
    c.put(b"env", tenant=tenant, namespace="env", key="k")
    assert meta_db.exists(), "CAIRN_META was not used"
    assert (srv.data_dir / "hot").is_dir(), "CAIRN_DATA_DIR was not used"


def test_max_header_bytes_flag(server_factory):
    srv = server_factory(extra_args=["--max-header-bytes", "4096"])
    raw = h.raw_exchange(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 6000 +
                         b"\r\n\r\n")
    assert h.parse_status(raw) == 431, raw[:200]
    raw = h.raw_exchange(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 2000 +
                         b"\r\n\r\n")
    assert h.parse_status(raw) == 200, raw[:200]


def cli_ok(data_dir, command, args=()):
    r = h.run_cli(data_dir, command, args)
    assert r.returncode == 0, h.cli_summary(r)
    return r


def test_cli_with_server_stopped_and_running(server_factory, tenant):
    srv = server_factory()
    d = srv.data_dir
    c = h.Client(srv, srv.admin_key)
    for i, size in enumerate([10, 1 * MiB, 5 * MiB]):
        c.put(h.pseudo_random_bytes(size, f"cli{i}"), tenant=tenant, namespace="cli",
              key=f"k{i}")
    assert srv.stop() == 0

    # --- server stopped ---
    offline_key = h.create_key(d, [tenant], "write")
    doomed_key = h.create_key(d, [tenant], "read")
    listing = cli_ok(d, ["keys", "list"])
    for key in (offline_key, doomed_key):
        assert h.key_id_of(key) in listing.stdout
    h.revoke_key(d, doomed_key)
    status = cli_ok(d, ["status"])
    assert re.search(r"\d", status.stdout), status.stdout
    cli_ok(d, ["gc"])
    cli_ok(d, ["fsck"])
    code, report = h.fsck_json(d)
    assert code == 0 and report["ok"] is True, report
    assert report["objects_checked"] >= 3 and report["chunks_checked"] >= 2, report
    unknown = h.run_cli(d, ["keys", "revoke"], ["0123456789abcdef"])
    assert unknown.returncode != 0, "revoking an unknown key id succeeded"

    # --- server running ---
    srv.start()
    c = h.Client(srv, srv.admin_key)
    k = h.Client(srv, offline_key).put(b"offline key", tenant=tenant, namespace="cli", key="k3")
    assert c.get(k["id"], tenant=tenant).content == b"offline key"
    assert_error(h.Client(srv, doomed_key).list(namespace="cli", tenant=tenant), 401,
                 "key revoked while the server was stopped")
    online_key = h.create_key(d, [tenant], "read")
    online = h.Client(srv, online_key)
    assert h.wait_until(lambda: online.list(namespace="cli", tenant=tenant).status_code == 200,
                        timeout=3)
    listing = cli_ok(d, ["keys", "list"])
    assert h.key_id_of(online_key) in listing.stdout
    h.revoke_key(d, online_key)
    assert h.wait_until(lambda: online.list(namespace="cli", tenant=tenant).status_code == 401,
                        timeout=5), "key revoked while running still works after 5 s"
    status = cli_ok(d, ["status"])
    assert re.search(r"\d", status.stdout)
    cli_ok(d, ["gc"])
    code, report = h.fsck_json(d)
    assert code == 0, report
    assert report["objects_checked"] >= 4
    assert c.get(k["id"], tenant=tenant).status_code == 200
    assert len(c.list_all(namespace="cli", tenant=tenant)) == 4


def shadow_path(root: Path, real: Path, real_hex: str, new_hex: str) -> Path:
    """Where a chunk named new_hex would live, by analogy with `real`'s fan-out
    directories (each a slice of the digest, e.g. chunks/01/94/0194bd...)."""
    parts = list(real.relative_to(root).parts)
    out, offset = [], 0
    for part in parts[:-1]:
        width = len(part)
        if 1 <= width <= 8 and real_hex[offset:offset + width] == part.lower():
            out.append(new_hex[offset:offset + width])
            offset += width
        else:
            out.append(part)
    out.append(parts[-1].lower().replace(real_hex, new_hex))
    return root.joinpath(*out)


def test_fsck_finds_and_repairs_problems(server_factory, tenant):
    srv = server_factory()
    c = h.Client(srv, srv.admin_key)
    a = h.pseudo_random_bytes(1 * MiB, "fsck-a")
    b = h.pseudo_random_bytes(1 * MiB, "fsck-b")
    obj_a = c.put(a, tenant=tenant, namespace="fsck", key="a")
    obj_b = c.put(b, tenant=tenant, namespace="fsck", key="b")
    srv.stop()
    d = srv.data_dir
    hex_a, hex_b = h.sha256_hex(a), h.sha256_hex(b)
    code, report = h.fsck_json(d)
    assert code == 0, report
    path_a, path_b = h.find_chunk_file(d, "hot", hex_a), h.find_chunk_file(d, "hot", hex_b)
    if path_a is None or path_b is None:
        pytest.skip("no chunk file named by its digest under <data-dir>/hot")

    # Orphaned chunk: a well-named chunk file that nothing knows about.
    orphan = h.pseudo_random_bytes(64 * KiB + 5, "orphan")
    orphan_path = shadow_path(d / "hot", path_a, hex_a, h.sha256_hex(orphan))
    orphan_path.parent.mkdir(parents=True, exist_ok=True)
    orphan_path.write_bytes(orphan)
    code, report = h.fsck_json(d)
    assert code == 1 and h.sha256_hex(orphan) in json.dumps(report["orphaned_chunks"]), report
    r = h.run_cli(d, ["fsck"], ["--repair"])
    # It found a problem: exit 1 even though it repaired it. The orphan is quarantined,
    # never deleted.
    assert r.returncode == 1, h.cli_summary(r)
    assert "quarantined orphaned chunk" in r.stdout and "after repair: clean" in r.stdout, \
        h.cli_summary(r)
    assert not orphan_path.exists()
    assert any(p.name.startswith(h.sha256_hex(orphan) + ".")
               for p in (d / "hot" / "quarantine").iterdir())
    code, report = h.fsck_json(d)
    assert code == 0, report

    # Corrupt chunk (one flipped byte), then restored.
    original = path_a.read_bytes()
    corrupt = bytearray(original)
    corrupt[len(corrupt) // 2] ^= 0xFF
    os.chmod(path_a, 0o644)
    path_a.write_bytes(bytes(corrupt))
    code, report = h.fsck_json(d)
    assert code == 1 and hex_a in json.dumps(report["corrupt_chunks"]), report
    path_a.write_bytes(original)
    code, report = h.fsck_json(d)
    assert code == 0, report

    # Missing chunk, then restored.
    aside = path_b.with_name(path_b.name + ".aside")
    path_b.rename(aside)
    code, report = h.fsck_json(d)
    assert code == 1 and hex_b in json.dumps(report["missing_chunks"]), report
    aside.rename(path_b)
    code, report = h.fsck_json(d)
    assert code == 0, report

    # Corrupt again and repair: the corrupt file goes to the quarantine, the object stays
    # recorded and is never served with bad bytes; uploading the same content heals it.
    path_a.write_bytes(bytes(corrupt))
    r = h.run_cli(d, ["fsck"], ["--repair"])
    assert r.returncode == 1, h.cli_summary(r)
    assert "quarantined corrupt chunk" in r.stdout and obj_a["id"] in r.stdout, h.cli_summary(r)
    assert not path_a.exists()
    assert any(p.name.startswith(hex_a + ".") for p in (d / "hot" / "quarantine").iterdir())
    code, report = h.fsck_json(d)
    assert code == 1 and hex_a in json.dumps(report["missing_chunks"]), report
    assert any(obj_a["id"] in line for line in report["affected_objects"]), report
    srv.start()
    c = h.Client(srv, srv.admin_key)
    r = c.get(obj_a["id"], tenant=tenant)
    # Its chunk is gone: the download fails, before or during the body, but never carries
    # a wrong byte.
    assert r.status_code != 200 or a.startswith(r.content), \
        "served corrupt bytes after fsck --repair"
    r = c.get(obj_b["id"], tenant=tenant)
    assert r.status_code == 200 and r.content == b
    c.put(a, tenant=tenant, namespace="fsck", key="a-again")
    r = c.get(obj_a["id"], tenant=tenant)
    assert r.status_code == 200 and r.content == a, "the object was not healed by a re-upload"
    srv.stop()
    code, report = h.fsck_json(d)
    assert code == 0, report


@pytest.mark.skipif(h.using_postgres(), reason="edits the SQLite file by hand")
def test_fsck_recounts_usage_counters_and_repair_rewrites_them(server_factory, tenant):
    """Usage is read from kept counters: fsck recounts them from the object rows, reports
    a damaged one with both figures, and --repair rewrites it; usage is right again."""
    srv = server_factory()
    c = h.Client(srv, srv.admin_key)
    c.put(b"small", tenant=tenant, namespace="counted", key="inline")
    c.put(h.pseudo_random_bytes(300 * KiB, "counted"), tenant=tenant, namespace="counted",
          key="chunked")
    before = h.usage_row(c.usage_json(tenant), "counted", "hot")
    assert before["objects"] == 2 and before["logical_bytes"] == 300 * KiB + 5, before
    srv.stop()
    db = sqlite3.connect(srv.data_dir / "meta.db")
    with db:
        db.execute("UPDATE usage_counters SET objects = objects + 40, "
                   "logical_bytes = logical_bytes + 7 WHERE namespace = 'counted'")
    db.close()
    code, report = h.fsck_json(srv.data_dir)
    assert code == 1, report
    [line] = report["wrong_usage_counters"]
    assert "'counted'" in line and "kept 42 objects" in line and "counted 2 objects" in line, line
    r = h.run_cli(srv.data_dir, ["fsck"], ["--repair"])
    assert r.returncode == 1, h.cli_summary(r)
    assert "recounted the usage of 1" in r.stdout and "after repair: clean" in r.stdout, \
        h.cli_summary(r)
    code, report = h.fsck_json(srv.data_dir)
    assert code == 0, report
    srv.start()
    c = h.Client(srv, srv.admin_key)
    assert h.usage_row(c.usage_json(tenant), "counted", "hot") == before
