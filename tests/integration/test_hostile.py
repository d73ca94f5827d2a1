"""Hostile clients against the native API: bounded memory, connections and body rates,
framing the server answers instead of waiting on, and no way to make the server echo a
control character.

Each test starts its own server with the limits it checks set small, so that the figures
are reached in seconds with loopback traffic.
"""
from __future__ import annotations

import resource
import socket
import time

import pytest

import cairn_harness as h

U64_MAX = 2**64 - 1


def upload_request(client: h.Client, key: str, framing: bytes) -> bytes:
    return h.raw_upload_head(client.key, "hostile", "hostile", key, framing)


def test_content_length_of_u64_max_is_refused_before_the_body(server_factory):
    srv = server_factory()
    client = h.Client(srv, srv.admin_key)
    request = upload_request(client, "huge", f"Content-Length: {U64_MAX}\r\n\r\n".encode())
    started = time.monotonic()
    reply = h.raw_exchange(srv.port, request + b"x" * 100, timeout=10, half_close=False)
    assert h.parse_status(reply) == 413, reply[:300]
    assert b"PayloadTooLarge" in reply and b"5497558138880" in reply  # says the limit: 5 TiB
    assert time.monotonic() - started < 5, "the server waited on a body it should refuse"
    assert client.get_by_key("hostile", "hostile", "huge").status_code == 404


def test_max_object_size_cuts_a_chunked_body_and_stores_nothing(server_factory):
    srv = server_factory(extra_args=["--max-object-size", "1MiB"])
    client = h.Client(srv, srv.admin_key)
    # Declared too large: refused at once.
    declared = upload_request(client, "declared",
                              f"Content-Length: {1024 * 1024 + 1}\r\n\r\n".encode())
    assert h.parse_status(h.raw_exchange(srv.port, declared, half_close=False)) == 413
    # Chunked, no declared length: cut once the body passes the limit.
    chunk = b"%x\r\n" % (256 * 1024) + b"z" * (256 * 1024) + b"\r\n"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(upload_request(client, "chunked", b"Transfer-Encoding: chunked\r\n\r\n"))
        try:
            for _ in range(6):  # 1.5 MiB
                sock.sendall(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # answered and closed mid-body
        status, _, body = h.read_http_response(sock, timeout=10)
    assert status == 413, body
    # Exactly at the limit is fine.
    r = client.upload(b"e" * (1024 * 1024), tenant="hostile", namespace="hostile", key="exact")
    assert r.status_code == 201, r.text
    for key in ("declared", "chunked"):
        assert client.get_by_key("hostile", "hostile", key).status_code == 404


def test_oversized_trailer_gets_431_and_the_server_serves_on(server_factory):
    srv = server_factory()
    client = h.Client(srv, srv.admin_key)
    for size in (70_000, 200_000, 1_500_000):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(upload_request(client, "trailer", b"Transfer-Encoding: chunked\r\n\r\n")
                         + b"5\r\nhello\r\n0\r\n")
            time.sleep(0.1)
            try:
                sock.sendall(b"X-T: " + b"a" * size + b"\r\n\r\n")
            except OSError:
                pass
            status, _, body = h.read_http_response(sock, timeout=10)
        assert status == 431, (size, body)
        assert b"HeaderFieldsTooLarge" in body
    assert srv.alive() and client.health_ok()
    assert client.get_by_key("hostile", "hostile", "trailer").status_code == 404


def test_bare_lf_chunk_framing_is_refused_at_once(server_factory):
    srv = server_factory()
    client = h.Client(srv, srv.admin_key)
    for framing in (b"5\nhello\n0\n\n", b"5\r\nhello\r\n0\n\n", b"5\r\nhello\n0\r\n\r\n"):
        started = time.monotonic()
        reply = h.raw_exchange(
            srv.port,
            upload_request(client, "lf", b"Transfer-Encoding: chunked\r\n\r\n") + framing,
            timeout=10, half_close=False)
        assert h.parse_status(reply) == 400, (framing, reply[:300])
        assert time.monotonic() - started < 5, "bare-LF framing was waited on"
    assert client.get_by_key("hostile", "hostile", "lf").status_code == 404


def test_http11_request_without_host_is_400_and_http10_is_served(server_factory):
    srv = server_factory()
    reply = h.raw_exchange(srv.port, b"GET /health HTTP/1.1\r\n\r\n")
    assert h.parse_status(reply) == 400 and b"Host" in reply, reply[:300]
    twice = b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
    assert h.parse_status(h.raw_exchange(srv.port, twice)) == 400
    assert h.parse_status(h.raw_exchange(srv.port, b"GET /health HTTP/1.0\r\n\r\n")) == 200
    assert h.parse_status(
        h.raw_exchange(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")) == 200


@pytest.mark.time_limit(120)
def test_trickling_body_is_cut_at_the_minimum_rate(server_factory):
    """--min-body-rate 64KiB: after the 10 s grace a body must have averaged 64 KiB per
    second of waiting. One sending 1 KiB/s is cut with 408; one at full speed is not."""
    srv = server_factory(extra_args=["--min-body-rate", "64KiB"])
    client = h.Client(srv, srv.admin_key)
    size = 4 * 1024 * 1024
    started = time.monotonic()
    status = None
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(upload_request(client, "slow", f"Content-Length: {size}\r\n\r\n".encode()))
        for _ in range(60):  # at most 60 s
            try:
                sock.sendall(b"s" * 1024)
            except OSError:
                break
            sock.settimeout(1.0)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            status = h.parse_status(data)
            break
    elapsed = time.monotonic() - started
    assert status == 408, f"trickling upload not cut with 408 (got {status} after {elapsed:.0f} s)"
    assert 9 <= elapsed <= 20, elapsed
    assert client.get_by_key("hostile", "hostile", "slow").status_code == 404
    r = client.upload(h.pseudo_random_bytes(size, 1), tenant="hostile", namespace="hostile",
                      key="fast")
    assert r.status_code == 201, r.text


def test_connections_past_the_limit_get_503_and_retry_after(server_factory):
    srv = server_factory(extra_args=["--max-connections", "20"])
    client = h.Client(srv, srv.admin_key)
    held = []
    try:
        for _ in range(20):
            held.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
        time.sleep(0.3)  # every one accepted and counted
        status, headers, body = None, {}, b""
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as extra:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = h.read_http_response(extra, timeout=5)
        assert status == 503, body
        assert headers.get("retry-after") == "1"
        assert b"SlowDown" in body
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, connections are served again.
    assert h.wait_until(client.health_ok, timeout=10)


@pytest.mark.time_limit(240)
def test_a_thousand_stalled_uploads_stay_within_the_memory_budget(server_factory):
    """1,000 uploads of a 100 MiB body each push up to 6 MiB (enough to fill an upload's
    pieces and chunk buffer) as fast as the server takes it, then stall. With
    --upload-memory 64MiB, RSS grows by at most the budget plus a per-connection bound;
    without the budget each would hold about 7 MiB (gigabytes in all). Uploads beyond the
    budget wait, then get 503 with Retry-After; the server answers other requests
    throughout and takes uploads again once the stalled ones are gone."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"open file limit {hard} is below the 1,200 this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    budget = 64 * 1024 * 1024
    srv = server_factory(extra_args=["--upload-memory", "64MiB", "--min-body-rate", "0"])
    client = h.Client(srv, srv.admin_key)
    warm = client.upload(b"w" * 100_000, tenant="hostile", namespace="hostile", key="warm")
    assert warm.status_code == 201
    rss_before = srv.read_vm_rss_bytes()
    head = f"Content-Length: {100 * 1024 * 1024}\r\n\r\n".encode()
    push = 6 * 1024 * 1024
    payload = memoryview(b"p" * (256 * 1024))
    socks, sent, replies = [], [], {}
    rss_peak = 0
    try:
        for i in range(1000):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            # Small send buffers: the kernel holds little for the uploads that wait.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
            sock.sendall(upload_request(client, f"stalled-{i}", head))
            sock.setblocking(False)
            socks.append(sock)
            sent.append(0)
        # Push for up to 8 s, round robin, as much as the server reads.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and min(sent) < push:
            progress = False
            for i, sock in enumerate(socks):
                if sent[i] >= push:
                    continue
                try:
                    n = sock.send(payload[:min(len(payload), push - sent[i])])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    sent[i] = push  # answered and closed
                    continue
                sent[i] += n
                progress = progress or n > 0
            if not progress:
                time.sleep(0.05)
            rss_peak = max(rss_peak, srv.read_vm_rss_bytes())
        assert client.health_ok(), "the server stopped answering under 1,000 stalled uploads"
        # The uploads that did not fit have waited their 10 s by now or soon: 503.
        time.sleep(6)
        rss_peak = max(rss_peak, srv.read_vm_rss_bytes())
        for i, sock in enumerate(socks):
            try:
                data = sock.recv(4096)
            except (BlockingIOError, OSError):
                continue
            if data:
                replies[i] = data
    finally:
        for sock in socks:
            sock.close()
    growth = rss_peak - rss_before
    pushed_mib = sum(sent) >> 20
    bound = budget + 1000 * 96 * 1024 + 32 * 1024 * 1024
    assert growth <= bound, f"RSS grew by {growth >> 20} MiB (bound {bound >> 20} MiB)"
    refused = [data for data in replies.values() if h.parse_status(data) == 503]
    assert len(refused) >= 900, f"only {len(refused)} of ~995 waiting uploads got 503"
    assert all(b"Retry-After: 1" in data for data in refused[:50])
    assert all(b"Unavailable" in data for data in refused[:50])
    # Everything is given back: a normal upload goes through at once.
    assert h.wait_until(lambda: client.upload(
        b"a" * 5_000_000, tenant="hostile", namespace="hostile", key="after").status_code == 201,
        timeout=30)
    print(f"RSS before {rss_before >> 20} MiB, with 1,000 stalled uploads "
          f"{rss_peak >> 20} MiB (+{growth >> 20} MiB); {pushed_mib} MiB pushed; "
          f"{len(refused)} got 503")
