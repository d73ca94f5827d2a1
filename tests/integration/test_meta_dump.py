"""Metadata snapshots: `cairn meta dump` from a running server, `cairn meta load` into a
fresh SQLite or PostgreSQL store on the same data directory, and the rotating backups of
`cairn serve --backup-meta`.

After a restore, every object the snapshot holds must read back byte for byte (native and
S3) with its metadata, keys must still authenticate, and fsck must be clean. Chunk files
written after the snapshot have no metadata row in the restored store: fsck reports them
as orphans (and only them), and `fsck --repair` removes them.

The PostgreSQL migration needs CAIRN_TEST_POSTGRES_URL (scripts/postgres-test-server.sh
start DIR prints one) and psql; without them it is skipped with the reason.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Optional

import pytest

import cairn_harness as h
import prom_text
from cairn_harness import KiB, MiB, describe

S3_TENANT = "acme"
REGION = "us-east-1"


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def s3_credentials() -> tuple[str, str]:
    access = "AK" + secrets.token_hex(9).upper()
    secret = secrets.token_urlsafe(30)
    h.register_secret(secret, "bootstrap S3 secret of a snapshot test")
    return access, secret


def s3_client(server: h.CairnServer, access: str, secret: str):
    boto3 = pytest.importorskip("boto3", reason="boto3 is needed for the S3 half of the test")
    import botocore.config

    config = botocore.config.Config(
        region_name=REGION, signature_version="s3v4", s3={"addressing_style": "path"},
        retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
        read_timeout=60)
    session = boto3.session.Session(aws_access_key_id=access, aws_secret_access_key=secret,
                                    region_name=REGION)
    return session.client("s3", endpoint_url=server.s3_url, config=config)


def start_server(factory, data_dir: Path, *, meta_url: Optional[str] = None,
                 admin_key: Optional[str] = None, s3: tuple[str, str], extra_args=()):
    kwargs = {} if admin_key is None else {"admin_key": admin_key}
    return factory(data_dir=data_dir, meta_url=meta_url, gc_interval=0,
                   extra_args=list(extra_args),
                   extra_env={"CAIRN_S3_ACCESS_KEY": s3[0], "CAIRN_S3_SECRET_KEY": s3[1],
                              "CAIRN_S3_TENANT": S3_TENANT}, **kwargs)


def dump(data_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    r = h.run_cli(data_dir, ["meta", "dump"], ["--out", str(out), *extra], timeout=300)
    assert r.returncode == 0, h.cli_summary(r)
    assert out.stat().st_mode & 0o777 == 0o600, "a snapshot holds credentials: mode 0600"
    return r


def load(data_dir: Path, snapshot: Path, meta_url: str) -> subprocess.CompletedProcess:
    return h.run_cli(data_dir, ["meta", "load"], ["--meta", meta_url, "--in", str(snapshot)],
                     timeout=300)


def snapshot_object_keys(snapshot: Path) -> set[tuple[str, str, str]]:
    """(tenant, namespace, key) of every object record in a snapshot file."""
    import json

    keys = set()
    with open(snapshot, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record.get("type") == "object":
                keys.add((record["tenant"], record["namespace"], record["key"]))
    return keys


def fsck_after_restore(data_dir: Path, meta_url: str, allowed_orphans: set[str]) -> None:
    """fsck finds nothing but orphaned chunks among `allowed_orphans` ("hot/<hex>": chunks
    of objects written after the snapshot); after --repair it is clean."""
    _, report = h.fsck_json(data_dir, "--meta", meta_url)
    problems = {k: report[k] for k in ("missing_chunks", "corrupt_chunks", "wrong_ref_counts",
                                       "wrong_usage_counters", "stale_temp_files") if report[k]}
    assert not problems, f"fsck after restore: {report}"
    unexpected = set(report["orphaned_chunks"]) - allowed_orphans
    assert not unexpected, (f"orphans that are no chunk of a post-snapshot object: "
                            f"{sorted(unexpected)[:5]}")
    if report["orphaned_chunks"]:
        # Orphans after a restore can be many: the operator checked them, hence the flag.
        r = h.run_cli(data_dir, ["fsck"], ["--repair", "--allow-mass-delete", "--meta", meta_url],
                      timeout=300)
        assert r.returncode == 1, h.cli_summary(r)  # it found problems, even if it fixed them
        assert r.stdout.count("quarantined orphaned chunk") == len(report["orphaned_chunks"]), \
            h.cli_summary(r)
    code, report = h.fsck_json(data_dir, "--meta", meta_url)
    assert code == 0 and report["ok"], f"fsck not clean after repair: {report}"


class Catalog:
    """What a user stored, to check after a restore."""

    def __init__(self):
        self.native: list[dict] = []  # {tenant, namespace, key, sha256, etag, meta, type}
        self.s3: list[dict] = []      # {bucket, key, sha256, etag, meta, tags, type}

    def add_native(self, client: h.Client, data: bytes, *, tenant, namespace, key,
                   storage_class=None, meta=None, content_type=None):
        obj = client.put(data, tenant=tenant, namespace=namespace, key=key,
                         storage_class=storage_class, meta=meta, content_type=content_type)
        head = client.get_by_key(namespace, tenant, key, method="HEAD")
        assert head.status_code == 200, describe(head)
        self.native.append({"tenant": tenant, "namespace": namespace, "key": key,
                            "sha256": h.sha256_hex(data), "etag": head.headers["ETag"],
                            "id": obj["id"],
                            "meta": {k.lower(): v for k, v in (meta or {}).items()},
                            "type": content_type or "application/octet-stream",
                            "class": storage_class or "hot"})
        return obj

    def verify(self, client: h.Client, s3) -> None:
        for o in self.native:
            r = client.get_by_key(o["namespace"], o["tenant"], o["key"])
            assert r.status_code == 200, describe(r, f"read back {o['key']}")
            assert h.sha256_hex(r.content) == o["sha256"], f"{o['key']}: other bytes"
            assert r.headers["ETag"] == o["etag"], o["key"]
            assert r.headers["X-Object-Id"] == o["id"], o["key"]
            got_meta = {k[len("x-meta-"):].lower(): v for k, v in r.headers.items()
                        if k.lower().startswith("x-meta-")}
            assert got_meta == o["meta"], f"{o['key']}: metadata {got_meta} != {o['meta']}"
            if o["type"] != "application/octet-stream":
                assert r.headers["Content-Type"] == o["type"], o["key"]
        for o in self.s3:
            got = s3.get_object(Bucket=o["bucket"], Key=o["key"])
            body = got["Body"].read()
            assert h.sha256_hex(body) == o["sha256"], f"s3 {o['key']}: other bytes"
            assert got["ETag"] == o["etag"], f"s3 {o['key']}: ETag {got['ETag']} != {o['etag']}"
            assert got.get("Metadata", {}) == o["meta"], o["key"]
            if o["tags"] is not None:
                tags = s3.get_object_tagging(Bucket=o["bucket"], Key=o["key"])["TagSet"]
                assert {t["Key"]: t["Value"] for t in tags} == o["tags"], o["key"]


def populate(client: h.Client, s3, tag: str) -> tuple[Catalog, dict]:
    """A variety of objects through both APIs; returns the catalog and an open multipart
    upload that a restore must keep."""
    cat = Catalog()
    t1, t2 = "t1" + tag, "t2" + tag
    big = h.pseudo_random_bytes(9 * MiB + 123, f"big{tag}")  # three chunks
    cat.add_native(client, b"tiny inline object", tenant=t1, namespace="docs", key="a/tiny.txt",
                   content_type="text/plain", meta={"Author": "ada"})
    cat.add_native(client, big, tenant=t1, namespace="models", key="llama/weights.bin",
                   meta={"Version": "3"})
    # A deduplicated copy in another namespace and tenant, and a cold one.
    cat.add_native(client, big, tenant=t2, namespace="mirror", key="weights-copy.bin")
    cat.add_native(client, h.pseudo_random_bytes(300 * KiB, f"cold{tag}"), tenant=t1,
                   namespace="archive", key="old/cold.bin", storage_class="cold")
    # Overwritten (the old version is invisible) and deleted (gone) objects.
    client.put(b"first version " * 5000, tenant=t1, namespace="docs", key="rewritten")
    cat.add_native(client, b"second version " * 5000, tenant=t1, namespace="docs",
                   key="rewritten")
    gone = client.put(b"deleted soon " * 5000, tenant=t1, namespace="docs", key="gone")
    assert client.delete(gone["id"], tenant=t1).status_code == 204
    cat.add_native(client, "ünïcode ✓".encode(), tenant=t1, namespace="docs",
                   key="dir/ünïcode key ✓.txt")

    bucket = "bkt" + tag
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket="empty" + tag)  # an explicit, empty namespace
    body = h.pseudo_random_bytes(200 * KiB, f"s3put{tag}")
    put = s3.put_object(Bucket=bucket, Key="put/one.bin", Body=body,
                        Metadata={"owner": "grace"}, Tagging="team=storage&tier=gold")
    cat.s3.append({"bucket": bucket, "key": "put/one.bin", "sha256": h.sha256_hex(body),
                   "etag": put["ETag"], "meta": {"owner": "grace"},
                   "tags": {"team": "storage", "tier": "gold"}})
    part1 = h.pseudo_random_bytes(5 * MiB, f"p1{tag}")
    part2 = h.pseudo_random_bytes(1 * MiB + 7, f"p2{tag}")
    mpu = s3.create_multipart_upload(Bucket=bucket, Key="multi/whole.bin",
                                     Metadata={"kind": "multipart"})
    e1 = s3.upload_part(Bucket=bucket, Key="multi/whole.bin", UploadId=mpu["UploadId"],
                        PartNumber=1, Body=part1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="multi/whole.bin", UploadId=mpu["UploadId"],
                        PartNumber=2, Body=part2)["ETag"]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="multi/whole.bin", UploadId=mpu["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    cat.s3.append({"bucket": bucket, "key": "multi/whole.bin",
                   "sha256": h.sha256_hex(part1 + part2), "etag": done["ETag"],
                   "meta": {"kind": "multipart"}, "tags": None})
    copied = s3.copy_object(Bucket=bucket, Key="copy/of-put.bin",
                            CopySource={"Bucket": bucket, "Key": "put/one.bin"})
    cat.s3.append({"bucket": bucket, "key": "copy/of-put.bin", "sha256": h.sha256_hex(body),
                   "etag": copied["CopyObjectResult"]["ETag"], "meta": {"owner": "grace"},
                   "tags": None})
    # Left open: a restore must keep the upload and its part.
    open_part = h.pseudo_random_bytes(5 * MiB, f"open{tag}")
    pending = s3.create_multipart_upload(Bucket=bucket, Key="multi/pending.bin")
    pending_etag = s3.upload_part(Bucket=bucket, Key="multi/pending.bin",
                                  UploadId=pending["UploadId"], PartNumber=1,
                                  Body=open_part)["ETag"]
    return cat, {"bucket": bucket, "key": "multi/pending.bin", "upload_id": pending["UploadId"],
                 "etag": pending_etag, "sha256": h.sha256_hex(open_part)}


def finish_pending_upload(s3, pending: dict) -> None:
    parts = s3.list_parts(Bucket=pending["bucket"], Key=pending["key"],
                          UploadId=pending["upload_id"])["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in parts] == [(1, pending["etag"])]
    s3.complete_multipart_upload(
        Bucket=pending["bucket"], Key=pending["key"], UploadId=pending["upload_id"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": pending["etag"]}]})
    body = s3.get_object(Bucket=pending["bucket"], Key=pending["key"])["Body"].read()
    assert h.sha256_hex(body) == pending["sha256"]


class BackgroundWriter:
    """Uploads distinct single-chunk objects until stopped (bounded in count and time).
    Remembers the chunk label ("hot/<sha256>") of every upload it started."""

    def __init__(self, client: h.Client, tenant: str, size: int = 200 * KiB,
                 limit: int = 2000, seconds: float = 120.0):
        self.client, self.tenant, self.size = client.clone(), tenant, size
        self.limit, self.seconds = limit, seconds
        self.stop_event = threading.Event()
        self.started: dict[str, str] = {}  # key -> sha256
        self.acknowledged: dict[str, str] = {}
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + self.seconds
        for i in range(self.limit):
            if self.stop_event.is_set() or time.monotonic() > deadline:
                return
            data = h.pseudo_random_bytes(self.size, f"bg-{self.tenant}-{i}")
            key = f"bg/{i:05d}"
            self.started[key] = h.sha256_hex(data)
            try:
                r = self.client.upload(data, tenant=self.tenant, namespace="live", key=key)
            except Exception as e:  # the server is stopped right after the writer
                self.errors.append(repr(e))
                return
            if r.status_code == 201:
                self.acknowledged[key] = self.started[key]
            else:
                self.errors.append(describe(r))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "background writer did not stop"

    def chunk_labels(self) -> set[str]:
        return {f"hot/{digest}" for digest in self.started.values()}

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        h.wait_until(lambda: len(self.acknowledged) >= count, timeout)
        assert len(self.acknowledged) >= count, f"only {len(self.acknowledged)} uploads"


def verify_background(client: h.Client, writer: BackgroundWriter, in_snapshot: set) -> None:
    """Objects of the writer in the snapshot read back identical; the others are absent."""
    for key, digest in writer.started.items():
        r = client.get_by_key("live", writer.tenant, key)
        if (writer.tenant, "live", key) in in_snapshot:
            assert r.status_code == 200, describe(r)
            assert h.sha256_hex(r.content) == digest, key
        else:
            assert r.status_code == 404, describe(r)


def create_postgres_database() -> str:
    url = os.environ.get("CAIRN_TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip("CAIRN_TEST_POSTGRES_URL is not set; start a server with "
                    "scripts/postgres-test-server.sh start DIR")
    if not shutil.which("psql"):
        pytest.skip("psql is not installed")
    name = "cairn_restore_" + uuid.uuid4().hex[:12]
    r = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    authority_end = url.find("/", url.find("://") + 3)
    query = url.find("?")
    base = url[:authority_end] if authority_end != -1 else url
    return base + "/" + name + (url[query:] if query != -1 else "")


def drop_postgres_database(url: str) -> None:
    admin = os.environ["CAIRN_TEST_POSTGRES_URL"]
    name = url.split("?")[0].rsplit("/", 1)[1]
    subprocess.run(["psql", admin, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                   capture_output=True, text=True, timeout=60)


def metric(server: h.CairnServer, family: str, **labels) -> float:
    r = h.new_session().get(server.url + "/metrics", timeout=10)
    assert r.status_code == 200, describe(r)
    families = prom_text.parse(r.text)
    return families[family].total("", **labels) if family in families else 0.0


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------
@pytest.mark.time_limit(600)
def test_live_migration_from_sqlite_to_postgres(server_factory, tmp_path):
    pg_url = create_postgres_database()
    try:
        data_dir = tmp_path / "data"
        creds = s3_credentials()
        srv = start_server(server_factory, data_dir, s3=creds)
        client = h.Client(srv, srv.admin_key)
        s3 = s3_client(srv, *creds)
        cat, pending = populate(client, s3, "m")
        reader_key = h.create_key(data_dir, ["t1m"], "read")
        revoked_key = h.create_key(data_dir, ["t1m"], "read")
        h.revoke_key(data_dir, revoked_key)
        other_s3 = h.run_cli(data_dir, ["keys", "create"],
                             ["--s3", "--tenant", "t1m"], allow_secret_in_stdout=True)
        assert other_s3.returncode == 0, h.cli_summary(other_s3)
        fields = dict(line.split(": ", 1) for line in other_s3.stdout.splitlines() if ": " in line)
        h.register_secret(fields["secret_key"], "second S3 secret")

        snapshot = tmp_path / "meta.jsonl"
        with BackgroundWriter(client, "livem") as writer:
            writer.wait_for(5)
            dump(data_dir, snapshot)
            writer.wait_for(len(writer.acknowledged) + 5)
        srv.stop()
        assert not writer.errors, writer.errors[:3]

        r = load(data_dir, snapshot, pg_url)
        assert r.returncode == 0, h.cli_summary(r)
        in_snapshot = snapshot_object_keys(snapshot)
        late = {k for k in writer.acknowledged if ("livem", "live", k) not in in_snapshot}
        assert late, "the writer should have written after the snapshot"
        fsck_after_restore(data_dir, pg_url, writer.chunk_labels())

        restored = start_server(server_factory, data_dir, meta_url=pg_url,
                                admin_key=srv.admin_key, s3=creds)
        client = h.Client(restored, restored.admin_key)
        s3 = s3_client(restored, *creds)
        cat.verify(client, s3)
        verify_background(client, writer, in_snapshot)
        assert s3.head_bucket(Bucket="emptym")["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert client.get_by_key("docs", "t1m", "gone").status_code == 404
        finish_pending_upload(s3, pending)
        # Credentials: API keys (revocation kept) and both S3 keys.
        reader = h.Client(restored, reader_key)
        assert reader.get_by_key("docs", "t1m", "a/tiny.txt").status_code == 200
        assert h.Client(restored, revoked_key).get_by_key(
            "docs", "t1m", "a/tiny.txt").status_code == 401
        second = s3_client(restored, fields["access_key"], fields["secret_key"])
        assert "Buckets" in second.list_buckets()
    finally:
        drop_postgres_database(pg_url)


@pytest.mark.time_limit(300)
def test_rotating_backups_restore_into_a_fresh_store(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    creds = s3_credentials()
    srv = start_server(server_factory, data_dir, s3=creds,
                       extra_args=["--backup-meta", "2s", "--backup-keep", "3"])
    client = h.Client(srv, srv.admin_key)
    s3 = s3_client(srv, *creds)
    cat, pending = populate(client, s3, "b")
    # Every object above is in any snapshot that starts from now on.
    taken = metric(srv, "cairn_meta_backups_total", result="ok")
    h.wait_until(lambda: metric(srv, "cairn_meta_backups_total", result="ok") >= max(4, taken + 2),
                 timeout=60)
    assert metric(srv, "cairn_meta_backups_total", result="ok") >= 4
    assert metric(srv, "cairn_meta_backups_total", result="error") == 0
    srv.stop()
    backups = sorted((data_dir / "backups").glob("meta-*.jsonl"))
    assert len(backups) == 3, f"--backup-keep 3 left {[b.name for b in backups]}"
    assert not list((data_dir / "backups").glob(".snapshot-*")), "temp files left behind"

    restored_url = f"sqlite://{tmp_path}/restored.db"
    r = load(data_dir, backups[-1], restored_url)
    assert r.returncode == 0, h.cli_summary(r)
    # A second load into the now non-empty store is refused and changes nothing.
    again = load(data_dir, backups[-1], restored_url)
    assert again.returncode == 1 and "not empty" in again.stderr, h.cli_summary(again)
    fsck_after_restore(data_dir, restored_url, set())

    restored = start_server(server_factory, data_dir, meta_url=restored_url,
                            admin_key=srv.admin_key, s3=creds)
    client = h.Client(restored, restored.admin_key)
    s3 = s3_client(restored, *creds)
    cat.verify(client, s3)
    finish_pending_upload(s3, pending)


@pytest.mark.time_limit(300)
def test_dump_during_concurrent_uploads_is_consistent(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    creds = s3_credentials()
    srv = start_server(server_factory, data_dir, s3=creds)
    client = h.Client(srv, srv.admin_key)
    snapshots = []
    # Multi-chunk uploads, so dumps land while uploads hold WRITING rows with chunks.
    with BackgroundWriter(client, "busy", size=9 * MiB, limit=200) as big, \
            BackgroundWriter(client, "busy2", size=100 * KiB, limit=2000) as small:
        big.wait_for(1)
        for i in range(3):
            snapshot = tmp_path / f"during-{i}.jsonl"
            dump(data_dir, snapshot)
            snapshots.append(snapshot)
            small.wait_for(len(small.acknowledged) + 3)
    srv.stop()
    assert not big.errors and not small.errors, (big.errors + small.errors)[:3]

    # Chunk labels of every upload started: a 9 MiB object's chunks are its 4 MiB pieces.
    allowed: set[str] = set()
    for key, _ in big.started.items():
        i = int(key.split("/")[1])
        data = h.pseudo_random_bytes(big.size, f"bg-{big.tenant}-{i}")
        for start in range(0, len(data), h.CHUNK_SIZE_BYTES):
            allowed.add("hot/" + h.sha256_hex(data[start:start + h.CHUNK_SIZE_BYTES]))
    allowed |= small.chunk_labels()

    for i, snapshot in enumerate(snapshots):
        url = f"sqlite://{tmp_path}/restored-{i}.db"
        r = load(data_dir, snapshot, url)
        assert r.returncode == 0, h.cli_summary(r)
        # Only inspect: a --repair here would delete chunks later snapshots still need.
        _, report = h.fsck_json(data_dir, "--meta", url, "--skip-content")
        for field in ("missing_chunks", "corrupt_chunks", "wrong_ref_counts",
                      "wrong_usage_counters"):
            assert not report[field], f"snapshot {i}: {field}: {report[field][:5]}"
        assert set(report["orphaned_chunks"]) <= allowed
    # The last snapshot, restored and repaired, serves every object it holds.
    url = f"sqlite://{tmp_path}/restored-{len(snapshots) - 1}.db"
    fsck_after_restore(data_dir, url, allowed)
    restored = start_server(server_factory, data_dir, meta_url=url, admin_key=srv.admin_key,
                            s3=creds)
    client = h.Client(restored, restored.admin_key)
    in_snapshot = snapshot_object_keys(snapshots[-1])
    assert any(t == "busy" for t, _, _ in in_snapshot), "no big upload made it into the dump"
    verify_background(client, small, in_snapshot)
    for key, digest in big.started.items():
        if ("busy", "live", key) in in_snapshot:
            r = client.get_by_key("live", "busy", key)
            assert r.status_code == 200 and h.sha256_hex(r.content) == digest, key


def test_damaged_snapshot_is_refused_and_loads_nothing(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    creds = s3_credentials()
    srv = start_server(server_factory, data_dir, s3=creds)
    client = h.Client(srv, srv.admin_key)
    client.put(b"x" * 100 * KiB, tenant="dmg", namespace="n", key="k")
    snapshot = tmp_path / "good.jsonl"
    dump(data_dir, snapshot)
    text = snapshot.read_bytes()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_bytes(text[:len(text) // 2])
    corrupted = tmp_path / "corrupted.jsonl"
    corrupted.write_bytes(text.replace(b'"key":"k"', b'"key":"K"'))
    url = f"sqlite://{tmp_path}/fresh.db"
    for bad, why in ((truncated, "truncated"), (corrupted, "corrupted")):
        r = load(data_dir, bad, url)
        assert r.returncode == 1 and why in r.stderr, h.cli_summary(r)
    # Nothing was loaded by the refused attempts: the good file still finds an empty store.
    r = load(data_dir, snapshot, url)
    assert r.returncode == 0, h.cli_summary(r)
    assert "1 objects" in r.stderr, r.stderr


def test_failing_backups_are_logged_and_counted_and_serving_goes_on(server_factory, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the backup directory should be")
    creds = s3_credentials()
    srv = start_server(server_factory, tmp_path / "data", s3=creds,
                       extra_args=["--backup-meta", "1s", "--backup-dir", str(blocker / "b")])
    client = h.Client(srv, srv.admin_key)
    h.wait_until(lambda: metric(srv, "cairn_meta_backups_total", result="error") >= 2, 30)
    assert metric(srv, "cairn_meta_backups_total", result="error") >= 2
    assert metric(srv, "cairn_meta_backups_total", result="ok") == 0
    obj = client.put(b"still serving " * 1000, tenant="bf", namespace="n", key="k")
    assert client.get(obj["id"], tenant="bf").status_code == 200
    assert "metadata backup failed" in srv.all_logs()


def test_bad_backup_interval_is_refused_at_start(tmp_path):
    r = subprocess.run([str(h.CAIRN_BIN), "serve", "--data-dir", str(tmp_path / "d"),
                        "--backup-meta", "every hour"], capture_output=True, text=True,
                       timeout=30, env=h.base_env({}))
    assert r.returncode == 2, r
    assert "--backup-meta" in r.stderr and "90s, 15m, 1h" in r.stderr, r.stderr
