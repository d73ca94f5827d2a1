"""Never serve a wrong byte: every chunk read is verified, damage is quarantined, marked,
logged and counted, and an upload of the same content heals it.

Faults are injected by hand, as an operator's disk would: one flipped byte, a truncated
file, a missing file. Each check reads through the real server (native API, S3 API through
boto3), whole and with ranges.
"""
from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest
import requests

import cairn_harness as h
import prom_text
from cairn_harness import KiB, MiB

CHUNK = h.CHUNK_SIZE_BYTES
BLOCK = 256 * KiB


def chunk_path(data_dir: Path, data: bytes, index: int) -> Path:
    """The file of chunk `index` (4 MiB pieces) of `data` under chunks/."""
    piece = data[index * CHUNK:(index + 1) * CHUNK]
    hex_digest = hashlib.sha256(piece).hexdigest()
    path = h.chunk_file(data_dir, hex_digest)
    assert path.exists(), f"no chunk file {path}"
    return path


def flip_byte(path: Path, offset: int) -> None:
    os.chmod(path, 0o600)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def quarantined(data_dir: Path) -> list[Path]:
    root = data_dir / "hot" / "quarantine"
    return sorted(root.iterdir()) if root.exists() else []


def raw_get(server: h.CairnServer, path: str, key: str, tenant: str,
            extra: str = "") -> tuple[int, bytes, bool]:
    """GET over a raw socket: (status, body bytes received, whether the body was complete
    according to Content-Length)."""
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
               f"X-Tenant: {tenant}\r\n{extra}Connection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        raw = b""
        while True:
            try:
                got = sock.recv(1 << 20)
            except (ConnectionResetError, socket.timeout):
                break
            if not got:
                break
            raw += got
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return status, body, length is not None and len(body) == length


def metric(client: h.Client, name: str, **labels) -> float:
    r = client.request("GET", "/metrics")
    assert r.status_code == 200
    families = prom_text.parse(r.text)
    assert name in families, f"/metrics has no {name}"
    return families[name].total(**labels)


def verify_failures(client: h.Client, reason: str) -> float:
    return metric(client, "cairn_chunk_verify_failures_total", reason=reason)


def healed(client: h.Client) -> float:
    return metric(client, "cairn_chunks_healed_total")


@pytest.fixture
def srv(server_factory):
    return server_factory(gc_interval=0)


def test_flipped_byte_mid_object_is_never_served(srv, tenant):
    c = h.Client(srv, srv.admin_key)
    data = h.pseudo_random_bytes(9 * MiB + 123, "integrity-mid")
    obj = c.put(data, tenant=tenant, key="mid")
    # Damage a byte in the second chunk, third block: the head of a whole GET has gone
    # out by then, so the response must stop short of its Content-Length.
    flip_byte(chunk_path(srv.data_dir, data, 1), 2 * BLOCK + 77)
    before = verify_failures(c, "checksum_mismatch")
    status, body, complete = raw_get(srv, f"/v1/objects/{obj['id']}", srv.admin_key, tenant)
    assert status == 200
    assert not complete, "a response holding a corrupt chunk was completed"
    # Every byte that was sent is a right byte, and none of the damaged block is among them.
    assert body == data[:len(body)]
    assert len(body) <= CHUNK + 2 * BLOCK
    assert verify_failures(c, "checksum_mismatch") == before + 1
    # The chunk was quarantined, marked and logged; the object now answers an error
    # before its status line, for GET, ranges and HEAD alike.
    assert any(p.name.startswith(hashlib.sha256(data[CHUNK:2 * CHUNK]).hexdigest())
               for p in quarantined(srv.data_dir))
    r = c.get(obj["id"], tenant=tenant)
    assert r.status_code == 500 and r.json()["error"]["code"] == "DataLoss", h.describe(r)
    r = c.get(obj["id"], tenant=tenant, headers={"Range": f"bytes={CHUNK + 10}-{CHUNK + 20}"})
    assert r.status_code == 500, h.describe(r)
    r = c.get(obj["id"], tenant=tenant, method="HEAD")
    assert r.status_code == 500, r.status_code
    # The chunks that are fine still serve their ranges.
    r = c.get(obj["id"], tenant=tenant, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == data[:100]
    # Reported once: asking again and again costs no log line and no count each time.
    assert verify_failures(c, "checksum_mismatch") == before + 1
    assert verify_failures(c, "missing") == 0
    assert srv.all_logs().count("integrity: chunk hot/") == 1


def test_flipped_byte_in_first_block_answers_an_error_status(srv, tenant):
    c = h.Client(srv, srv.admin_key)
    data = h.pseudo_random_bytes(5 * MiB, "integrity-first")
    obj = c.put(data, tenant=tenant, key="first")
    flip_byte(chunk_path(srv.data_dir, data, 0), 1000)
    # The first block is read and verified before the head: the client gets a status,
    # not a 200 and a cut.
    r = c.get(obj["id"], tenant=tenant, headers={"Range": "bytes=10-2000"})
    assert r.status_code == 500 and r.json()["error"]["code"] == "DataLoss", h.describe(r)
    r = c.get(obj["id"], tenant=tenant)
    assert r.status_code == 500, h.describe(r)


def test_missing_and_truncated_chunks_answer_errors_before_the_head(srv, tenant):
    c = h.Client(srv, srv.admin_key)
    missing = h.pseudo_random_bytes(6 * MiB, "integrity-missing")
    truncated = h.pseudo_random_bytes(6 * MiB, "integrity-truncated")
    obj_m = c.put(missing, tenant=tenant, key="missing")
    obj_t = c.put(truncated, tenant=tenant, key="truncated")
    chunk_path(srv.data_dir, missing, 1).unlink()
    path = chunk_path(srv.data_dir, truncated, 1)
    os.truncate(path, 1 * MiB)
    for obj in (obj_m, obj_t):
        for method in ("GET", "HEAD"):
            r = c.get(obj["id"], tenant=tenant, method=method)
            assert r.status_code == 500, f"{method} {obj['key']}: {r.status_code}"
    assert verify_failures(c, "missing") >= 1
    assert verify_failures(c, "size_mismatch") >= 1
    # The truncated copy went to quarantine, not to /dev/null.
    assert any(p.stat().st_size == 1 * MiB for p in quarantined(srv.data_dir))


def test_upload_of_same_content_heals_every_sharing_object(srv, tenant):
    c = h.Client(srv, srv.admin_key)
    data = h.pseudo_random_bytes(9 * MiB, "integrity-heal")
    sha = hashlib.sha256(data).hexdigest()
    a = c.put(data, tenant=tenant, key="a")
    b = c.put(data, tenant=tenant, key="b")  # a dedup hit: shares every chunk with a
    flip_byte(chunk_path(srv.data_dir, data, 1), 5)
    # Dedup must not trust the damaged copy: the upload writes a fresh one.
    before = healed(c)
    r = c.upload(data, tenant=tenant, key="c", sha256=sha)
    assert r.status_code == 201, h.describe(r)
    assert healed(c) == before + 1
    for obj in (a, b, r.json()):
        got = c.get(obj["id"], tenant=tenant)
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha, \
            h.describe(got)


def test_upload_heals_a_chunk_already_found_damaged(srv, tenant):
    """Damage found by a read first (file quarantined, chunk marked), healed later."""
    c = h.Client(srv, srv.admin_key)
    data = h.pseudo_random_bytes(5 * MiB, "integrity-heal-later")
    a = c.put(data, tenant=tenant, key="a")
    flip_byte(chunk_path(srv.data_dir, data, 0), 3)
    assert c.get(a["id"], tenant=tenant).status_code == 500
    assert c.get(a["id"], tenant=tenant).status_code == 500  # marked: fails before reading
    r = c.upload(data, tenant=tenant, key="b")
    assert r.status_code == 201, h.describe(r)
    got = c.get(a["id"], tenant=tenant)
    assert got.status_code == 200 and got.content == data


def test_s3_get_of_damaged_object_is_an_error(server_factory):
    boto3 = pytest.importorskip("boto3")
    import botocore.config
    import botocore.exceptions

    access, secret = "AKIAINTEGRITY0000001", "integrity-secret-" + "x" * 23
    h.register_secret(secret, "the S3 secret of test_integrity")
    srv = server_factory(gc_interval=0, extra_env={"CAIRN_S3_ACCESS_KEY": access,
                                                   "CAIRN_S3_SECRET_KEY": secret})
    config = botocore.config.Config(region_name="us-east-1", signature_version="s3v4",
                                    s3={"addressing_style": "path"},
                                    retries={"total_max_attempts": 1, "mode": "standard"})
    s3 = boto3.session.Session(aws_access_key_id=access, aws_secret_access_key=secret) \
        .client("s3", endpoint_url=srv.s3_url, config=config)
    s3.create_bucket(Bucket="integrity")
    data = h.pseudo_random_bytes(5 * MiB, "integrity-s3")
    s3.put_object(Bucket="integrity", Key="k", Body=data)
    flip_byte(chunk_path(srv.data_dir, data, 0), 4 * BLOCK + 1)
    # Whole object: the damaged block is past the first one, so the head has gone out and
    # the body must stop short of its Content-Length, which botocore reports.
    body = None
    try:
        body = s3.get_object(Bucket="integrity", Key="k")["Body"].read()
    except Exception:  # noqa: BLE001 - any client-side error is the expected outcome
        pass
    assert body is None, "an S3 GET of a damaged object completed"
    # From now on the object is known damaged: an error status before any byte.
    with pytest.raises(botocore.exceptions.ClientError) as error:
        s3.get_object(Bucket="integrity", Key="k", Range="bytes=0-9")
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error.value.response["Error"]["Code"] == "InternalError"
