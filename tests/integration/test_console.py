"""The web console's listener (docs/console.md) on a real `cairn serve`, over real HTTP:
the embedded page with its security headers, a cookie session with CSRF checks, sign-out
that ends the session on the server, and a body too large refused before it is read."""
from __future__ import annotations

import http.client
import json

import cairn_harness as h


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = dict(headers or {})
        data = None
        if isinstance(body, bytes):
            data = body
        elif body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        conn.close()


def start_console(server_factory):
    port = h.free_port()
    srv = server_factory(extra_args=["--console-listen", f"127.0.0.1:{port}"])
    return srv, port


def test_the_page_is_served_with_a_strict_policy_and_the_address_is_printed(server_factory):
    srv, port = start_console(server_factory)
    status, headers, body = request(port, "GET", "/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert headers["x-frame-options"] == "DENY"
    assert b"/assets/app.js" in body and b"<script>" not in body
    for asset, kind in (("/assets/app.js", "text/javascript"), ("/assets/app.css", "text/css")):
        status, headers, _ = request(port, "GET", asset)
        assert status == 200 and headers["content-type"].startswith(kind), asset
    assert request(port, "GET", "/etc/passwd")[0] == 404
    # Another name for this address (DNS rebinding) gets nothing.
    assert request(port, "GET", "/", headers={"Host": f"evil.example:{port}"})[0] == 421
    assert request(port, "GET", "/", headers={"Host": f"localhost:{port}"})[0] == 200
    stdout = srv.log_files[-2].read_text()
    assert f"web console on http://127.0.0.1:{port}" in stdout


def test_a_session_needs_its_cookie_and_csrf_token_and_ends_at_sign_out(server_factory):
    srv, port = start_console(server_factory)
    status, headers, _ = request(port, "POST", "/api/session", {"api_key": srv.admin_key + "x"})
    assert status == 401 and "set-cookie" not in headers
    status, headers, body = request(port, "POST", "/api/session", {"api_key": srv.admin_key})
    assert status == 200, body
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = cookie.split(";", 1)[0]
    csrf = json.loads(body)["csrf_token"]
    assert srv.admin_key[len("cairn_") + 16 + 1:] not in body.decode()  # the secret part

    status, _, body = request(port, "GET", "/api/overview", headers={"Cookie": session})
    assert status == 200, body
    assert "dedup_ratio" in json.loads(body)

    bucket = {"tenant": "acme", "name": "console-made"}
    # Without the token (what a forged cross-site form could send): refused, nothing made.
    status, _, _ = request(port, "POST", "/api/buckets", bucket, {"Cookie": session})
    assert status == 403
    status, _, body = request(port, "GET", "/api/buckets?tenant=acme", headers={"Cookie": session})
    assert json.loads(body)["buckets"] == []
    status, _, body = request(port, "POST", "/api/buckets", bucket,
                              {"Cookie": session, "X-CSRF-Token": csrf})
    assert status == 201, body
    status, _, body = request(port, "GET", "/api/buckets?tenant=acme", headers={"Cookie": session})
    assert [b["name"] for b in json.loads(body)["buckets"]] == ["console-made"]

    status, headers, _ = request(port, "DELETE", "/api/session", headers={"Cookie": session,
                                                                          "X-CSRF-Token": csrf})
    assert status == 204 and "Max-Age=0" in headers["set-cookie"]
    assert request(port, "GET", "/api/overview", headers={"Cookie": session})[0] == 401


def test_a_body_too_large_is_refused_before_it_is_read(server_factory):
    srv, port = start_console(server_factory)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", "/api/session")
        conn.putheader("Content-Length", str(100 * 1024 * 1024))
        conn.putheader("Content-Type", "application/json")
        conn.endheaders()
        conn.send(b"{" * 1024)  # the rest never comes
        response = conn.getresponse()
        assert response.status == 413
    finally:
        conn.close()
    # The server is fine afterwards.
    assert request(port, "GET", "/")[0] == 200


def sign_in(port, credentials):
    status, headers, body = request(port, "POST", "/api/session", credentials)
    assert status == 200, body
    return {"Cookie": headers["set-cookie"].split(";", 1)[0],
            "X-CSRF-Token": json.loads(body)["csrf_token"]}


def test_files_go_up_in_parts_come_down_and_are_shared_by_a_presigned_link(server_factory):
    """The console's bodies over real sockets: a streamed upload, a multipart upload with a
    resumed part list, a download and an inline preview with their safety headers, a share
    link fetched without any session, and a GC job run to its end."""
    import hashlib
    import os
    import time
    import urllib.request

    srv, port = start_console(server_factory)
    admin = sign_in(port, {"api_key": srv.admin_key})
    assert request(port, "POST", "/api/buckets", {"tenant": "acme", "name": "files"}, admin)[0] == 201
    where = "tenant=acme&bucket=files"

    # One streamed PUT; a body that breaks off leaves nothing.
    small = os.urandom(3 * 1024 * 1024 + 17)
    status, _, body = request(port, "PUT", f"/api/upload?{where}&key=dir/a%20b.bin", small,
                              {**admin, "Content-Type": "application/x-thing"})
    assert status == 201, body
    assert json.loads(body)["content_hash"] == "sha256:" + hashlib.sha256(small).hexdigest()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("PUT", f"/api/upload?{where}&key=cut.bin")
        for name, value in {**admin, "Content-Length": str(8 * 1024 * 1024)}.items():
            conn.putheader(name, value)
        conn.endheaders()
        conn.send(b"x" * 1024 * 1024)
    finally:
        conn.close()
    # Without the token nothing goes up.
    assert request(port, "PUT", f"/api/upload?{where}&key=forged", b"x",
                   {"Cookie": admin["Cookie"]})[0] == 403

    # Multipart: part 2 first, then a "resume" that asks what arrived and sends the rest.
    part1, part2 = os.urandom(5 * 1024 * 1024), os.urandom(1234567)
    status, _, body = request(port, "POST", "/api/uploads",
                              {"tenant": "acme", "bucket": "files", "key": "big.bin",
                               "content_type": "application/octet-stream"}, admin)
    assert status == 201, body
    upload = json.loads(body)["upload_id"]
    named = f"{where}&key=big.bin&upload_id={upload}"
    status, _, body = request(port, "PUT", f"/api/uploads/part?{named}&part=2", part2, admin)
    assert status == 200, body
    status, _, body = request(port, "GET", f"/api/uploads/parts?{named}", headers=admin)
    arrived = {p["part"]: p["etag"] for p in json.loads(body)["parts"]}
    assert list(arrived) == [2]
    status, _, body = request(port, "PUT", f"/api/uploads/part?{named}&part=1", part1, admin)
    assert status == 200, body
    arrived[1] = json.loads(body)["etag"]
    status, _, body = request(port, "POST", "/api/uploads/complete",
                              {"tenant": "acme", "bucket": "files", "key": "big.bin",
                               "upload_id": upload,
                               "parts": [{"part": n, "etag": arrived[n]} for n in (1, 2)]},
                              admin)
    assert status == 201, body
    assert json.loads(body)["size_bytes"] == len(part1) + len(part2)

    status, _, body = request(port, "GET", f"/api/objects?{where}&delimiter=/", headers=admin)
    listing = json.loads(body)
    assert [o["key"] for o in listing["objects"]] == ["big.bin"], listing
    assert listing["prefixes"] == ["dir/"]

    # Download: the bytes, as an attachment, sandboxed; a range; no session, no bytes.
    status, headers, body = request(port, "GET", f"/api/download?{where}&key=big.bin",
                                    headers={"Cookie": admin["Cookie"]})
    assert status == 200 and body == part1 + part2
    assert headers["content-disposition"] == "attachment; filename*=UTF-8''big.bin"
    assert headers["content-security-policy"].startswith("sandbox")
    status, headers, body = request(port, "GET", f"/api/download?{where}&key=dir/a%20b.bin",
                                    headers={"Cookie": admin["Cookie"], "Range": "bytes=10-19"})
    assert status == 206 and body == small[10:20]
    assert headers["content-disposition"] == "attachment; filename*=UTF-8''a%20b.bin"
    assert request(port, "GET", f"/api/download?{where}&key=big.bin")[0] == 401
    # A stored HTML page previews as plain text, never as a page.
    page = b"<script>alert(1)</script>"
    status, _, _ = request(port, "PUT", f"/api/upload?{where}&key=page.html", page,
                           {**admin, "Content-Type": "text/html"})
    assert status == 201
    status, headers, body = request(
        port, "GET", f"/api/download?{where}&key=page.html&disposition=inline",
        headers={"Cookie": admin["Cookie"]})
    assert status == 200 and body == page
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    # The cut upload never appeared.
    assert request(port, "GET", f"/api/object?{where}&key=cut.bin", headers=admin)[0] == 404

    # A share link needs an S3 key pair's session; fetched with no credentials at all.
    status, _, body = request(port, "POST", "/api/share",
                              {"tenant": "acme", "bucket": "files", "key": "big.bin",
                               "expires_seconds": 600}, admin)
    assert status == 409, body
    status, _, body = request(port, "POST", "/api/keys",
                              {"kind": "s3", "tenants": ["acme"], "scope": "read"}, admin)
    assert status == 201, body
    pair = json.loads(body)
    h.register_secret(pair["secret"], "the console's S3 key")
    s3 = sign_in(port, {"access_key": pair["id"], "secret_key": pair["secret"]})
    status, _, body = request(port, "POST", "/api/share",
                              {"tenant": "acme", "bucket": "files", "key": "dir/a b.bin",
                               "expires_seconds": 600}, s3)
    assert status == 200, body
    url = json.loads(body)["url"]
    assert url.startswith(srv.s3_url + "/files/dir/a%20b.bin?"), url
    with urllib.request.urlopen(url, timeout=30) as shared:
        assert shared.read() == small
    # Revoking the key ends the link too (the S3 API reads a key's row at most a second
    # late).
    status, _, _ = request(port, "DELETE", f"/api/keys/{pair['id']}", headers=admin)
    assert status == 204
    time.sleep(1.2)
    try:
        urllib.request.urlopen(url, timeout=30)
        raise AssertionError("a revoked key's link still works")
    except urllib.error.HTTPError as e:
        assert e.code == 403

    # GC from the console, to its end (bounded wait).
    status, _, body = request(port, "POST", "/api/jobs", {"kind": "gc"}, admin)
    assert status == 202, body
    deadline = time.monotonic() + 60
    while True:
        status, _, body = request(port, "GET", "/api/jobs", headers=admin)
        job = json.loads(body)["jobs"][0]
        if job["state"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert job["state"] == "done", job
    assert "deleted_chunks" in job["result"]
    status, _, body = request(port, "GET", "/api/rates", headers=admin)
    assert status == 200 and json.loads(body)["points"], body
    # Every call has its access log line, with the session's key id and never a secret.
    log = srv.log_files[-1].read_text()
    lines = [line for line in log.splitlines() if line.startswith("cairn: console request")]
    assert any("method=PUT path=/api/upload ns=files tenant=acme key=\"dir/a b.bin\" status=201"
               in line and f"key_id={h.key_id_of(srv.admin_key)}" in line
               for line in lines), lines[:5]
    assert any("path=/api/share" in line and "status=409" in line for line in lines)
    assert not h.find_leaked_secrets(log)


def test_the_overview_counts_small_inline_objects_and_shared_chunks_once(server_factory):
    srv, port = start_console(server_factory)
    client = h.Client(srv, srv.admin_key)
    small = b"kept in the metadata row"               # under the inline threshold
    large = h.pseudo_random_bytes(3 * h.MiB, "overview")  # chunked
    small_object = client.put(small, tenant="acme", key="small.txt")
    client.put(large, tenant="acme", key="large-1.bin")
    client.put(large, tenant="acme", key="large-2.bin")  # the same chunks again
    status, headers, body = request(port, "POST", "/api/session", {"api_key": srv.admin_key})
    assert status == 200, body
    session = headers["set-cookie"].split(";", 1)[0]
    status, _, body = request(port, "GET", "/api/overview", headers={"Cookie": session})
    assert status == 200, body
    figures = json.loads(body)
    assert figures["objects"] == 3
    assert figures["logical_bytes"] == len(small) + 2 * len(large)
    assert figures["inline_bytes"] == len(small)
    # Physical: the small object's bytes plus the large one's chunks, stored once.
    assert figures["physical_bytes"] == len(small) + len(large), figures
    hot = [r for r in figures["storage_roots"] if r["class"] == "hot"][0]
    assert hot["inline_bytes"] == len(small) and hot["physical_bytes"] == len(small) + len(large)
    # Per tenant: objects and logical bytes from the kept counters; the physical bytes,
    # recounted in the background, are back within the call's wait on a store this small.
    [acme] = [t for t in figures["tenants"] if t["tenant"] == "acme"]
    assert acme["objects"] == 3 and acme["logical_bytes"] == len(small) + 2 * len(large), acme
    assert acme["physical_bytes"] == len(small) + len(large) and acme["physical_as_of"], acme
    # A delete shows in the next call: at once in the counters, and in the recount.
    assert client.delete(small_object["id"], tenant="acme").status_code == 204
    status, _, body = request(port, "GET", "/api/overview", headers={"Cookie": session})
    assert status == 200, body
    [acme] = [t for t in json.loads(body)["tenants"] if t["tenant"] == "acme"]
    assert acme["objects"] == 2 and acme["logical_bytes"] == 2 * len(large), acme
    assert acme["physical_bytes"] == len(large), acme


def test_console_uploads_share_the_servers_upload_memory_budget(server_factory):
    """With --upload-memory 8MiB, one stalled console upload holds the budget: a second one
    waits its 10 s for room and is refused with 503, before anything is stored; once the
    first is gone, uploads go through again."""
    import socket
    import time
    port = h.free_port()
    srv = server_factory(extra_args=["--console-listen", f"127.0.0.1:{port}",
                                     "--upload-memory", "8MiB", "--min-body-rate", "0"])
    status, headers, body = request(port, "POST", "/api/session", {"api_key": srv.admin_key})
    assert status == 200, body
    session = headers["set-cookie"].split(";", 1)[0]
    csrf = json.loads(body)["csrf_token"]
    assert request(port, "POST", "/api/buckets", {"tenant": "acme", "name": "budget"},
                   {"Cookie": session, "X-CSRF-Token": csrf})[0] == 201

    def head(key: str, length: int) -> bytes:
        return (f"PUT /api/upload?tenant=acme&bucket=budget&key={key} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nCookie: {session}\r\nX-CSRF-Token: {csrf}\r\n"
                f"Content-Type: application/octet-stream\r\n"
                f"Content-Length: {length}\r\n\r\n").encode()

    big = 100 * h.MiB
    holder = socket.create_connection(("127.0.0.1", port), timeout=30)
    waiter = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        holder.sendall(head("held", big) + b"h" * (4 * h.MiB))  # reserved, then stalls
        time.sleep(0.5)
        waiter.sendall(head("waiting", big))
        started = time.monotonic()
        status, headers, body = h.read_http_response(waiter, timeout=30)
        waited = time.monotonic() - started
        assert status == 503, body
        assert headers.get("retry-after") == "1" and waited >= 8, (headers, waited)
    finally:
        holder.close()
        waiter.close()
    # Nothing of the refused upload is stored.
    status, _, body = request(port, "GET", "/api/objects?tenant=acme&bucket=budget",
                              headers={"Cookie": session})
    assert status == 200 and json.loads(body)["objects"] == [], body
    # The first connection is gone: its reservation is back.
    status, _, body = request(port, "PUT", "/api/upload?tenant=acme&bucket=budget&key=after",
                              b"after the budget came back",
                              {"Cookie": session, "X-CSRF-Token": csrf,
                               "Content-Type": "application/octet-stream"})
    assert status == 201, body
