"""A full disk: every write that needs space answers 507 on both APIs (never 500), the
failures are logged without flooding, and an operator frees space through Cairn itself:
DELETE and GC keep working on the full disk, and writes succeed again afterwards.

The data directory lives on a small tmpfs mounted for the test (root only), so the disk
really fills: chunk files, the SQLite database and its WAL all compete for it.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from pathlib import Path

import pytest

import cairn_harness as h
from cairn_harness import KiB, MiB

SIZE_MIB = 40


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MIB}m,mode=0700", "tmpfs",
                        str(mount_point)], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def test_full_disk_answers_507_and_deletes_and_gc_free_it(small_fs, server_factory, tenant):
    if h.using_postgres():
        pytest.skip("the metadata is on the database server's disk, not this small one: "
                    "small objects still fit and there is no local reserve to release")
    boto3 = pytest.importorskip("boto3")
    import botocore.config
    import botocore.exceptions

    access, secret = "AKIADISKFULL00000001", "diskfull-secret-" + "y" * 24
    h.register_secret(secret, "the S3 secret of test_disk_full")
    data_dir = small_fs / "data"
    # Logs outside the small file system: a full disk must not swallow them.
    srv = server_factory(data_dir=data_dir, gc_interval=0, log_dir=small_fs.parent / "logs",
                         extra_env={"CAIRN_S3_ACCESS_KEY": access,
                                    "CAIRN_S3_SECRET_KEY": secret,
                                    "CAIRN_S3_TENANT": tenant})
    c = h.Client(srv, srv.admin_key)
    assert (data_dir / "meta.db-reserve").exists(), "no space reserve beside the database"

    # Fill the disk with distinct 2 MiB objects until the server says it is full.
    stored: dict[str, tuple[str, str]] = {}  # key -> (id, sha256)
    refusal = None
    for i in range(SIZE_MIB):
        data = h.pseudo_random_bytes(2 * MiB, f"fill-{i}")
        r = c.upload(data, tenant=tenant, key=f"fill/{i}")
        if r.status_code == 201:
            stored[f"fill/{i}"] = (r.json()["id"], hashlib.sha256(data).hexdigest())
            continue
        refusal = r
        break
    assert refusal is not None, "the disk never filled"
    assert refusal.status_code == 507, h.describe(refusal, "upload to a full disk")
    assert refusal.json()["error"]["code"] == "InsufficientStorage"
    assert len(stored) >= 5

    # The refused 2 MiB upload left its partial chunk behind for no one: up to 2 MiB may still
    # be free, room for small objects (inline in the database). Fill that too, then the disk
    # is full for every layer.
    for i in range(2000):
        data = h.pseudo_random_bytes(1 * KiB, f"small-{i}")
        r = c.upload(data, tenant=tenant, key=f"small/{i}")
        if r.status_code != 201:
            assert r.status_code == 507, h.describe(r, "small upload to an almost full disk")
            break
        stored[f"small/{i}"] = (r.json()["id"], hashlib.sha256(data).hexdigest())
    else:
        raise AssertionError("2000 small objects and the disk still not full")

    # Every write that needs space is 507, whichever layer meets the full disk first:
    # another large upload (chunk files), small ones (inline in the database), S3 PUTs.
    statuses = set()
    for i in range(20):
        size = (2 * MiB) if i % 2 else (1 * KiB)
        r = c.upload(h.pseudo_random_bytes(size, f"more-{i}"), tenant=tenant, key=f"more/{i}")
        statuses.add(r.status_code)
    assert statuses == {507}, statuses
    config = botocore.config.Config(region_name="us-east-1", signature_version="s3v4",
                                    s3={"addressing_style": "path"},
                                    retries={"total_max_attempts": 1, "mode": "standard"})
    s3 = boto3.session.Session(aws_access_key_id=access, aws_secret_access_key=secret) \
        .client("s3", endpoint_url=srv.s3_url, config=config)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        s3.put_object(Bucket="default", Key="s3-full", Body=h.pseudo_random_bytes(MiB, "s3"))
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 507
    assert error.value.response["Error"]["Code"] == "InsufficientStorage"

    # Deletes work on the full disk: the operator frees space through Cairn.
    # Large objects, as an operator would pick: each delete costs a little of the reserve
    # (database pages) and GC then gives back whole chunk files.
    large = sorted(key for key in stored if key.startswith("fill/"))
    doomed = large[: len(large) // 2]
    for key in doomed:
        r = c.delete(stored[key][0], tenant=tenant)
        assert r.status_code in (200, 204), h.describe(r, f"DELETE {key} on a full disk")
    # Half the store at once is past GC's per-pass cap: the operator says so.
    r = h.run_cli(data_dir, ["gc"], ["--grace", "0", "--allow-mass-delete"], timeout=120)
    assert r.returncode == 0, h.cli_summary(r)
    for key in doomed:
        assert c.get(stored.pop(key)[0], tenant=tenant).status_code == 404

    # Space is back: writes succeed again (the reserve is taken back first).
    def upload_works() -> bool:
        r = c.upload(h.pseudo_random_bytes(2 * MiB, "after"), tenant=tenant, key="after")
        return r.status_code == 201
    assert h.wait_until(upload_works, timeout=15, interval=0.5), "writes did not recover"
    s3.put_object(Bucket="default", Key="s3-after", Body=b"fine")

    # Nothing acknowledged was lost; nothing refused is visible.
    for key, (object_id, sha) in stored.items():
        r = c.get(object_id, tenant=tenant)
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == sha, key
    for i in range(20):
        assert c.get_by_key("default", tenant, f"more/{i}").status_code == 404

    # Logged, but not a line per failure.
    log = srv.all_logs()
    lines = [line for line in log.splitlines() if "failed with 507" in line]
    assert 1 <= len(lines) <= 5, lines
    assert "released the" in log and "space reserve" in log
