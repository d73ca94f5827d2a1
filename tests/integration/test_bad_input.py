"""Hostile and malformed input. Each case must change nothing a user can see (listing and
usage identical before and after), must not crash the server (/health still answers, and
the teardown checks the process did not die), and must get a 4xx where the contract
names one."""
from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import cairn_harness as h
from cairn_harness import assert_error, describe, parse_status, raw_exchange

NS = "bad"


@pytest.fixture(scope="module")
def victim(client):
    """A tenant with a few objects whose visible state must never change."""
    tenant = "victim" + uuid.uuid4().hex[:6]
    objects = [client.put(h.pseudo_random_bytes(n, f"victim{n}"), tenant=tenant, namespace=NS,
                          key=f"seed/{n}") for n in (0, 10, 70000, 4 * h.MiB + 1)]
    return tenant, objects


@pytest.fixture
def unchanged(client, victim):
    """Asserts, after the test, that the victim tenant looks exactly as before and the
    server is healthy."""
    tenant, _ = victim
    before = client.snapshot(tenant, [NS])
    yield tenant
    assert client.health_ok(), "server stopped answering /health"
    assert client.server.alive(), "server process died"
    assert client.snapshot(tenant, [NS]) == before, "visible state changed"


def post_head(client, tenant, key, extra: bytes = b"") -> bytes:
    return h.raw_upload_head(client.key, tenant, NS, key, extra)


@pytest.mark.parametrize("line", [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n",
    b"GET health HTTP/1.1\r\n\r\n",
    b"POST /v1/objects HTTP/1.1\r\nContent-Length: 5\r\nNo-Colon-Header\r\n\r\nhello",
    b"POST /v1/objects HTTP/1.1\r\nContent-Length: 5\r\n: empty-name\r\n\r\nhello",
    b"G\xffT / HTTP/1.1\r\n\r\n",
    b"\r\n\r\n\r\n\r\n",
], ids=lambda b: repr(b[:24]))
def test_malformed_request_line_or_headers(client, unchanged, line):
    raw = raw_exchange(client.server.port, line, timeout=5)
    status = parse_status(raw)
    assert status is None or (400 <= status < 600 and status not in (500, 503)), raw[:200]


def test_header_block_over_16_kib_gets_431(client, unchanged):
    tenant = unchanged
    pad = b"X-Pad: " + b"a" * (17 * 1024) + b"\r\n"
    raw = raw_exchange(client.server.port,
                       b"GET /health HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n", timeout=5)
    assert parse_status(raw) == 431, raw[:300]
    many = b"".join(f"X-H{i}: {'b' * 1000}\r\n".encode() for i in range(20))
    raw = raw_exchange(client.server.port,
                       post_head(client, tenant, "big-headers", many + b"Content-Length: 3\r\n") +
                       b"\r\nabc", timeout=5)
    assert parse_status(raw) == 431, raw[:300]
    r = client.request("GET", f"/v1/objects?namespace={NS}&tenant={tenant}",
                       headers={"X-Pad": "c" * 20000})
    assert_error(r, 431, "requests with a 20 KB header")


def test_header_block_under_the_limit_is_fine(client, unchanged):
    tenant = unchanged
    r = client.request("GET", f"/v1/objects?namespace={NS}&tenant={tenant}",
                       headers={"X-Pad-1": "d" * 6000, "X-Pad-2": "e" * 5000})
    assert r.status_code == 200, describe(r)


@pytest.mark.parametrize("sent,declared", [(5000, 100000), (0, 10), (6 * h.MiB, 10 * h.MiB)])
def test_body_shorter_than_content_length_then_close(client, unchanged, sent, declared):
    tenant = unchanged
    key = f"truncated-{sent}"
    with socket.create_connection(("127.0.0.1", client.server.port), timeout=10) as s:
        s.sendall(post_head(client, tenant, key, f"Content-Length: {declared}\r\n\r\n".encode()))
        s.sendall(h.pseudo_random_bytes(sent, "short"))
        time.sleep(0.2)
    time.sleep(0.5)  # let the server notice the closed connection
    assert client.get_by_key(NS, tenant, key).status_code == 404


def test_chunked_body_cut_off_then_close(client, unchanged):
    tenant = unchanged
    with socket.create_connection(("127.0.0.1", client.server.port), timeout=10) as s:
        s.sendall(post_head(client, tenant, "cut-chunked", b"Transfer-Encoding: chunked\r\n\r\n"))
        s.sendall(b"400\r\n" + b"z" * 1024 + b"\r\n" + b"400\r\n" + b"z" * 100)
        time.sleep(0.2)
    time.sleep(0.5)
    assert client.get_by_key(NS, tenant, "cut-chunked").status_code == 404


@pytest.mark.parametrize("framing", [
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999999999\r\n",
    b"Content-Length: 12abc\r\n",
    b"Content-Length: 3\r\nContent-Length: 5\r\n",
    b"Transfer-Encoding: gzip, chunked, identity\r\n",
    b"Transfer-Encoding: chunked\r\n",  # with an invalid chunk size below
], ids=["negative", "huge", "not-a-number", "conflicting", "bad-te", "bad-chunk-size"])
def test_bad_body_framing(client, unchanged, framing):
    tenant = unchanged
    body = b"zz-not-hex\r\nabc\r\n0\r\n\r\n" if b"chunked" in framing else b"abcde"
    raw = raw_exchange(client.server.port,
                       post_head(client, tenant, "framing", framing) + b"\r\n" + body, timeout=5)
    status = parse_status(raw)
    assert status is None or 400 <= status < 500 or status == 501, raw[:300]
    assert client.get_by_key(NS, tenant, "framing").status_code == 404


@pytest.mark.parametrize("bad_id", [
    "not-a-uuid", "1234", "550e8400-e29b-41d4-a716-44665544000g",
    "550e8400e29b41d4a716446655440000", "550e8400-e29b-41d4-a716-4466554400001",
    "550e8400-e29b-41d4-a716", "{550e8400-e29b-41d4-a716-446655440000}",
    "%00", "550e8400-e29b-41d4-a716-44665544000%00", "550e8400-e29b-41d4-a716-44665544000",
])
def test_invalid_object_ids_get_400(client, unchanged, bad_id):
    tenant = unchanged
    for method in ("GET", "HEAD", "DELETE"):
        r = client.request(method, f"/v1/objects/{bad_id}", headers={"X-Tenant": tenant})
        if method == "HEAD":
            assert r.status_code == 400, describe(r, bad_id)
        else:
            assert_error(r, 400, f"{method} {bad_id}")


def test_unknown_valid_uuid_is_404(client, unchanged):
    r = client.get("6f1c2b9e-3d4a-4f5b-8c7d-0e1f2a3b4c5d", tenant=unchanged)
    assert_error(r, 404, "unknown id")


@pytest.mark.parametrize("storage_class", ["warm", "glacier", "hot-ish", "hotter", "1"])
def test_unknown_storage_class_is_400(client, unchanged, storage_class):
    r = client.upload(b"data", tenant=unchanged, namespace=NS, key="class",
                      storage_class=storage_class)
    assert_error(r, 400, f"class {storage_class!r}")


@pytest.mark.parametrize("key", ["k" * 1025, "é" * 513, "😀" * 256 + "x"],
                         ids=["1025-ascii", "1026-utf8", "1025-emoji"])
def test_key_over_1024_bytes_is_400(client, unchanged, key):
    assert len(key.encode()) > 1024
    r = client.upload(b"data", tenant=unchanged, namespace=NS, key=key)
    assert_error(r, 400, "long key")
    r = client.get_by_key(NS, unchanged, key)
    assert r.status_code in (400, 404), describe(r)


@pytest.mark.parametrize("encoded", ["%FF%FE", "abc%C3", "%C0%AF", "%ED%A0%80", "%F8%88%80%80%80",
                                     "a%00b", "%E2%82", "ok/%80/x"])
def test_key_with_invalid_utf8_or_nul_is_400(client, unchanged, encoded):
    r = client.upload(b"data", tenant=unchanged, namespace=NS, key=encoded, raw_key_header=True)
    assert_error(r, 400, f"X-Key {encoded}")
    r = client.request("GET", f"/v1/objects/by-key/{NS}/{unchanged}/{encoded}")
    assert r.status_code in (400, 404), describe(r)
    assert r.status_code != 200


def test_raw_non_ascii_bytes_in_x_key(client, unchanged):
    """A Latin-1 byte (not UTF-8) sent raw in X-Key."""
    request = (b"POST /v1/objects HTTP/1.1\r\nHost: x\r\n" +
               f"Authorization: Bearer {client.key}\r\nX-Tenant: {unchanged}\r\n"
               f"X-Namespace: {NS}\r\n".encode() + b"X-Key: caf\xe9\r\n")
    raw = raw_exchange(client.server.port, request + b"Content-Length: 1\r\n\r\nx", timeout=5)
    status = parse_status(raw)
    assert status is None or 400 <= status < 500, raw[:300]


def test_empty_or_missing_key_is_400(client, unchanged):
    assert_error(client.upload(b"data", tenant=unchanged, namespace=NS, key=""), 400, "empty key")
    r = client.request("POST", "/v1/objects", data=b"data",
                       headers={"X-Tenant": unchanged, "X-Namespace": NS})
    assert_error(r, 400, "no X-Key")


def test_missing_tenant_or_namespace_is_400(client, unchanged, victim):
    _, objects = victim
    r = client.request("POST", "/v1/objects", data=b"data",
                       headers={"X-Namespace": NS, "X-Key": "no-tenant"})
    assert_error(r, 400, "POST without X-Tenant")
    r = client.request("POST", "/v1/objects", data=b"data",
                       headers={"X-Tenant": unchanged, "X-Key": "no-namespace"})
    assert_error(r, 400, "POST without X-Namespace")
    r = client.request("GET", f"/v1/objects/{objects[1]['id']}")
    assert_error(r, 400, "GET by id without X-Tenant")
    r = client.request("DELETE", f"/v1/objects/{objects[1]['id']}")
    assert_error(r, 400, "DELETE by id without X-Tenant")
    assert_error(client.request("GET", f"/v1/objects?namespace={NS}"), 400, "list w/o tenant")
    assert_error(client.request("GET", "/v1/usage"), 400, "usage w/o tenant")


@pytest.mark.parametrize("name", ["", "Upper", "-leading", ".leading", "has space", "a" * 64,
                                  "slash/inside", "..", "ünï", "semi;colon"])
def test_invalid_tenant_or_namespace_names_are_400(client, unchanged, name):
    r = client.upload(b"data", tenant=unchanged, namespace=name, key="bad-name")
    assert_error(r, 400, f"namespace {name!r}")
    if name:  # an empty X-Tenant could equally be read as "missing"; both are 400
        r = client.upload(b"data", tenant=name, namespace=NS, key="bad-name")
        assert r.status_code == 400, describe(r, f"tenant {name!r}")


def test_path_traversal_key_is_an_ordinary_key(client, server, tenant, tmp_path):
    """`../../etc/passwd` and friends are keys, never paths: they round-trip, and no file
    appears outside the data directory."""
    passwd = Path("/etc/passwd")
    passwd_before = passwd.read_bytes() if passwd.exists() else None
    outside = server.data_dir.parent
    before = {p for p in outside.rglob("*") if server.data_dir not in p.parents}
    absolute_targets = [Path("/tmp/x"), Path("/abs"), Path("/b"), Path("/escape")]
    existed = {p: p.exists() for p in absolute_targets}
    keys = ["../../etc/passwd", "../escape", "/abs/../../../tmp/x", "..", ".", "a/../../b",
            "..\\..\\windows", "hot/../cold"]
    for i, key in enumerate(keys):
        data = f"payload {i}".encode()
        obj = client.put(data, tenant=tenant, namespace=NS, key=key)
        assert obj["key"] == key
        r = client.get_by_key(NS, tenant, key)
        assert r.status_code == 200 and r.content == data, describe(r, key)
        assert client.get(obj["id"], tenant=tenant).content == data
    listed = [o["key"] for o in client.list_all(namespace=NS, tenant=tenant)]
    assert sorted(listed) == sorted(keys)
    after = {p for p in outside.rglob("*") if server.data_dir not in p.parents}
    new = {p for p in after - before if "logs" not in p.parts}
    assert not new, f"files created outside the data dir: {sorted(new)[:10]}"
    assert (passwd.read_bytes() if passwd.exists() else None) == passwd_before
    assert {p: p.exists() for p in absolute_targets} == existed
    for dirpath, dirnames, filenames in os.walk(server.data_dir):
        for name in filenames + dirnames:
            assert name not in ("passwd", "escape", "windows"), os.path.join(dirpath, name)
    r = client.delete_by_key(NS, tenant, "../../etc/passwd")
    assert r.status_code == 204
    assert passwd.exists() == (passwd_before is not None)


def test_garbage_bodies_on_get(client, unchanged, victim):
    _, objects = victim
    obj = objects[1]
    garbage = h.pseudo_random_bytes(5000, "garbage-get")
    # A fresh connection per request: after an unread body the server may close the
    # connection, which is its right.
    r = client.clone().request("GET", f"/v1/objects/{obj['id']}",
                               headers={"X-Tenant": unchanged}, data=garbage)
    assert r.status_code in (200, 400), describe(r)
    if r.status_code == 200:
        assert r.content == h.pseudo_random_bytes(10, "victim10")
    r = client.clone().request("GET", f"/v1/objects?namespace={NS}&tenant={unchanged}",
                               data=iter([garbage[:100], garbage[100:]]))
    assert r.status_code in (200, 400), describe(r)
    r = client.clone().request("GET", "/health", data=garbage)
    assert r.status_code in (200, 400), describe(r)
    r = client.clone().request("DELETE", f"/v1/objects/{objects[0]['id']}", data=b"junk",
                               headers={"X-Tenant": unchanged + "x"})
    assert r.status_code == 404, describe(r)


def test_range_garbage_is_never_a_server_error(client, unchanged, victim):
    _, objects = victim
    obj = objects[2]
    for spec in ("bytes=abc", "bytes=5-1", "items=0-1", "bytes=", "bytes=--1", "bytes=1-2-3",
                 "bytes=0-1,", "bytes=99999999999999999999999-", "bytes=-0"):
        r = client.get(obj["id"], tenant=unchanged, headers={"Range": spec})
        assert r.status_code in (200, 206, 400, 416), describe(r, spec)
        if r.status_code == 200:
            assert len(r.content) == 70000


def random_garbage(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    noise = rng.randbytes(rng.randrange(1, 600))
    if kind == 0:
        return noise
    if kind == 1:
        return b"GET /" + noise + b" HTTP/1.1\r\n\r\n"
    if kind == 2:
        return b"POST /v1/objects HTTP/1.1\r\nHost: x\r\n" + noise + b"\r\n\r\n"
    if kind == 3:
        te = rng.choice([b"Transfer-Encoding: chunked\r\n",
                         b"Content-Length: " + str(rng.randrange(-5, 10**6)).encode() + b"\r\n"])
        return (b"POST /v1/objects HTTP/1.1\r\nX-Tenant: t\r\nX-Namespace: n\r\nX-Key: k\r\n" +
                te + b"\r\n" + noise)
    if kind == 4:
        return bytes(b ^ (rng.randrange(256) if rng.random() < 0.05 else 0)
                     for b in b"GET /v1/objects?namespace=a&tenant=b HTTP/1.1\r\nHost: x\r\n"
                              b"Range: bytes=0-10\r\n\r\n")
    return rng.choice([b"\r\n", b"\n", b" ", b"\x00"]) * rng.randrange(1, 3000)


def test_random_bytes_on_the_socket(client, unchanged):
    rng = random.Random(20240611)
    payloads = [random_garbage(rng) for _ in range(1000)]
    port = client.server.port
    deadline = time.monotonic() + 100
    lock = threading.Lock()
    results = {"sent": 0, "answered": 0, "silent": 0, "5xx": []}

    def send(payload: bytes) -> None:
        if time.monotonic() > deadline:
            return
        try:
            raw = raw_exchange(port, payload, timeout=1.5)
        except OSError:
            raw = b""
        status = parse_status(raw)
        with lock:
            results["sent"] += 1
            if status is None:
                results["silent"] += 1
            else:
                results["answered"] += 1
                if status >= 500 and status not in (501, 505):
                    results["5xx"].append((payload[:60], raw[:120]))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, payloads))
    assert results["sent"] == len(payloads), f"only {results['sent']} sent within 100 s"
    assert not results["5xx"], f"server errors on garbage: {results['5xx'][:3]}"
    r = h.new_session().get(client.base + "/health", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "ok", h.describe(r, "/health")
    storage = r.json()["storage"]
    assert storage["metadata"] == {"healthy": True} and storage["chunk_store"] == {"healthy": True}


def test_huge_chunked_trailer_closes_one_connection_not_the_server(server, client):
    """A chunked body whose trailer field is past what the HTTP parser can hold used to
    abort the whole process. Now it gets 431 on that connection; the server serves on."""
    key = client.key
    for size in (70_000, 200_000):
        request = (b"POST /v1/objects HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   b"Authorization: Bearer " + key.encode() + b"\r\n"
                   b"X-Tenant: trailer\r\nX-Namespace: trailer\r\nX-Key: t\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(request)
            time.sleep(0.2)  # the trailer arrives in a later read, as an attacker sends it
            try:
                sock.sendall(b"X-T: " + b"a" * size + b"\r\n\r\n")
                reply = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError, socket.timeout):
                reply = b""
        # Answered (the server's own 431), never a stored object.
        assert h.parse_status(reply) == 431, reply[:200]
        assert server.alive(), "the server died on a large chunked trailer"
        assert client.health_ok()
    r = client.get_by_key("trailer", "trailer", "t")
    assert r.status_code == 404
