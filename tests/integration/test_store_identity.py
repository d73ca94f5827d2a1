"""The storage roots and the metadata store know each other (store identity), GC and
fsck --repair quarantine instead of deleting, and fsck checks the metadata engine."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

import cairn_harness as h

KiB = 1024
MiB = 1024 * KiB

pytestmark = pytest.mark.skipif(h.using_postgres(), reason="these tests pick SQLite files")


def chunk_files(data_dir: Path) -> list[Path]:
    return sorted(p for cls in ("hot", "cold") for p in (data_dir / cls / "chunks").rglob("*")
                  if p.is_file())


def quarantined(data_dir: Path, cls: str = "hot") -> list[Path]:
    q = data_dir / cls / "quarantine"
    return sorted(q.iterdir()) if q.exists() else []


def serve_refused(data_dir: Path, *args: str) -> "h.subprocess.CompletedProcess":
    r = h.run_cli(data_dir, ["serve"], ["--listen", "127.0.0.1:0", "--s3-listen", "",
                                        "--gc-interval", "1", "--gc-grace", "0", *args],
                  timeout=60)
    assert r.returncode == 1, h.cli_summary(r)
    return r


def filled_store(server_factory, tenant: str, n: int = 4) -> tuple[h.CairnServer, list[dict]]:
    srv = server_factory(gc_interval=0)
    c = h.Client(srv, srv.admin_key)
    objs = [c.put(h.pseudo_random_bytes(256 * KiB + i, f"id-{i}"), tenant=tenant,
                  namespace="ident", key=f"k{i}") for i in range(n)]
    srv.stop()
    return srv, objs


def test_every_root_and_the_metadata_get_one_identity(server_factory, tenant):
    srv, _ = filled_store(server_factory, tenant, 1)
    ids = set()
    for cls in ("hot", "cold"):
        path = srv.data_dir / cls / "store-id"
        assert path.stat().st_mode & 0o777 == 0o600
        ids.add(path.read_text().strip())
    db = sqlite3.connect(srv.data_dir / "meta.db")
    ids.add(db.execute("SELECT store_id FROM store_identity").fetchone()[0])
    db.close()
    assert len(ids) == 1 and len(ids.pop()) == 36


def test_a_second_node_with_a_fresh_metadata_store_refuses_and_deletes_nothing(
        server_factory, tenant, tmp_path):
    srv, objs = filled_store(server_factory, tenant)
    before = chunk_files(srv.data_dir)
    assert len(before) >= 4
    other = tmp_path / "other-node"
    other.mkdir()
    # The incident: another node on the same roots without the right --meta.
    r = serve_refused(srv.data_dir, "--meta", f"sqlite://{other}/meta.db")
    assert "--meta" in r.stderr and "cairn meta load" in r.stderr, h.cli_summary(r)
    assert chunk_files(srv.data_dir) == before
    # gc and fsck --repair refuse the same way: they open the stores through one check.
    for command, args in (("gc", ["--grace", "0"]), ("fsck", ["--repair"])):
        r = h.run_cli(srv.data_dir, [command], ["--meta", f"sqlite://{other}/meta.db", *args])
        assert r.returncode != 0 and "store identity" in r.stderr, h.cli_summary(r)
    assert chunk_files(srv.data_dir) == before
    # The right metadata still serves everything.
    srv.start()
    c = h.Client(srv, srv.admin_key)
    for o in objs:
        assert c.get(o["id"], tenant=tenant).status_code == 200


def test_a_deleted_meta_db_refuses_to_start(server_factory, tenant):
    srv, _ = filled_store(server_factory, tenant)
    before = chunk_files(srv.data_dir)
    for suffix in ("", "-wal", "-shm"):
        p = srv.data_dir / f"meta.db{suffix}"
        if p.exists():
            p.unlink()
    r = serve_refused(srv.data_dir)
    assert "empty" in r.stderr and "--adopt-roots" in r.stderr, h.cli_summary(r)
    assert chunk_files(srv.data_dir) == before


def test_a_snapshot_restores_into_a_new_metadata_store_on_the_same_roots(
        server_factory, tenant, tmp_path):
    srv, objs = filled_store(server_factory, tenant)
    snapshot = tmp_path / "snap.jsonl"
    r = h.run_cli(srv.data_dir, ["meta", "dump"], ["--out", str(snapshot)])
    assert r.returncode == 0, h.cli_summary(r)
    store_id = (srv.data_dir / "hot" / "store-id").read_text().strip()
    assert json.loads(snapshot.read_text().splitlines()[0])["store_id"] == store_id
    url = f"sqlite://{tmp_path}/restored.db"
    r = h.run_cli(srv.data_dir, ["meta", "load"], ["--in", str(snapshot), "--meta", url])
    assert r.returncode == 0, h.cli_summary(r)
    code, report = h.fsck_json(srv.data_dir, "--meta", url)
    assert code == 0, report
    restored = server_factory(data_dir=srv.data_dir, meta_url=url, admin_key=srv.admin_key)
    c = h.Client(restored, restored.admin_key)
    for o in objs:
        assert c.get(o["id"], tenant=tenant).status_code == 200


def test_gc_quarantines_an_orphan_and_deletes_it_after_the_grace_period(server_factory, tenant):
    srv, _ = filled_store(server_factory, tenant, 12)
    d = srv.data_dir
    data = h.pseudo_random_bytes(10 * KiB, "orphan")
    digest = h.sha256_hex(data)
    path = h.chunk_file(d, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (1, 1))
    r = h.run_cli(d, ["gc"], ["--grace", "3600"])  # the file counts as new (ctime): kept
    assert r.returncode == 0 and path.exists(), h.cli_summary(r)
    r = h.run_cli(d, ["gc"], ["--grace", "0"])
    assert r.returncode == 0, h.cli_summary(r)
    assert "quarantined orphaned chunk" in r.stdout, h.cli_summary(r)
    assert not path.exists()
    q = [p for p in quarantined(d) if p.name.startswith(digest + ".")]
    assert len(q) == 1 and q[0].read_bytes() == data
    # Still within a grace period of an hour: kept. With grace 0: deleted.
    r = h.run_cli(d, ["gc"], ["--grace", "3600"])
    assert r.returncode == 0 and q[0].exists(), h.cli_summary(r)
    r = h.run_cli(d, ["gc"], ["--grace", "0"])
    assert r.returncode == 0 and not q[0].exists(), h.cli_summary(r)
    assert "deleted quarantined files: 1" in r.stdout, h.cli_summary(r)


def test_mass_orphans_stop_gc_at_the_cap_unless_allowed(server_factory, tenant):
    srv, _ = filled_store(server_factory, tenant, 4)
    d = srv.data_dir
    planted = []
    for i in range(6):
        data = h.pseudo_random_bytes(4 * KiB, f"mass-{i}")
        digest = h.sha256_hex(data)
        path = h.chunk_file(d, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        planted.append(path)
    r = h.run_cli(d, ["gc"], ["--grace", "0"])
    assert r.returncode == 3, h.cli_summary(r)
    assert "--allow-mass-delete" in r.stderr, h.cli_summary(r)
    assert all(p.exists() for p in planted)
    r = h.run_cli(d, ["fsck"], ["--repair"])
    assert r.returncode == 1 and all(p.exists() for p in planted), h.cli_summary(r)
    r = h.run_cli(d, ["gc"], ["--grace", "0", "--allow-mass-delete"])
    assert r.returncode == 0, h.cli_summary(r)
    assert not any(p.exists() for p in planted)
    assert len(quarantined(d)) == 6


def test_fsck_reports_a_damaged_meta_db_and_exits_1(server_factory, tenant):
    srv, _ = filled_store(server_factory, tenant, 30)
    db_path = srv.data_dir / "meta.db"
    db = sqlite3.connect(db_path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'objects_state_updated'"
                      ).fetchone()[0]
    db.close()
    assert not Path(str(db_path) + "-wal").exists() or \
        Path(str(db_path) + "-wal").stat().st_size == 0
    with open(db_path, "r+b") as f:  # garble the index's root page past its header
        f.seek((root - 1) * page_size + 16)
        f.write(b"\xa5" * 64)
    for args in ([], ["--repair"]):
        r = h.run_cli(srv.data_dir, ["fsck"], args)
        assert r.returncode == 1, h.cli_summary(r)
        assert "metadata store damaged" in r.stdout or "metadata" in r.stderr, h.cli_summary(r)
