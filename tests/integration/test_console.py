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
    assert srv.admin_key.rsplit("_", 1)[1] not in body.decode()

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
