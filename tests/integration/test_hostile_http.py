"""Hostile clients of the native API get the answer HTTP/1.1 (RFC 9110) names: overlong
ranges are clamped, unknown methods are 501 and known ones on the wrong route 405 with
Allow, a revoked key is reported as revoked to whoever holds it (and only to them), and
usage shows the user's namespaces, never the internal ones of multipart uploads."""
from __future__ import annotations

import pytest

import cairn_harness as h
from cairn_harness import assert_error, describe, parse_status, raw_exchange

NS = "hostile"
SIZE = 70000  # above the inline threshold: chunked, streamed


@pytest.fixture(scope="module")
def stored(client):
    tenant = "rng" + h.key_id_of(h.generate_api_key())[:8]
    data = h.pseudo_random_bytes(SIZE, "hostile-range")
    obj = client.put(data, tenant=tenant, namespace=NS, key="ranged")
    small = client.put(b"0123456789", tenant=tenant, namespace=NS, key="small")
    return tenant, obj, small, data


# ---------------------------------------------------------------------------------------
# Range (RFC 9110 section 14): the decision, for every digit count
#   * a last-byte-pos at or past the end is clamped to the end: 206, bytes 0-(size-1)/size,
#     including numbers too large for 64 bits (1*DIGIT has no upper bound, so they are
#     valid syntax: the server must not ignore the header because of them);
#   * a first-byte-pos past the end (any size) is unsatisfiable: 416;
#   * a suffix longer than the object selects all of it: 206;
#   * only a range that is not valid syntax (not digits, last < first) is ignored: 200.
# ---------------------------------------------------------------------------------------
OVERLONG_LAST = ["bytes=0-70000", "bytes=0-4294967296", "bytes=0-18446744073709551614",
                 "bytes=0-18446744073709551615", "bytes=0-18446744073709551616",
                 "bytes=0-" + "9" * 40]


@pytest.mark.parametrize("header", OVERLONG_LAST)
@pytest.mark.parametrize("which", ["large", "small"])
def test_overlong_last_byte_pos_is_clamped(client, stored, header, which):
    tenant, obj, small, data = stored
    target, body = (obj, data) if which == "large" else (small, b"0123456789")
    r = client.get(target["id"], tenant=tenant, headers={"Range": header})
    assert r.status_code == 206, describe(r, header)
    assert r.headers["Content-Range"] == f"bytes 0-{len(body) - 1}/{len(body)}", describe(r)
    assert r.content == body


@pytest.mark.parametrize("header", ["bytes=-18446744073709551616", "bytes=-" + "9" * 30])
def test_overlong_suffix_selects_the_whole_object(client, stored, header):
    tenant, obj, _, data = stored
    r = client.get(obj["id"], tenant=tenant, headers={"Range": header})
    assert r.status_code == 206, describe(r, header)
    assert r.headers["Content-Range"] == f"bytes 0-{SIZE - 1}/{SIZE}"
    assert r.content == data


@pytest.mark.parametrize("header", ["bytes=18446744073709551615-",
                                    "bytes=18446744073709551616-18446744073709551617",
                                    "bytes=" + "9" * 30 + "-"])
def test_huge_first_byte_pos_is_unsatisfiable(client, stored, header):
    tenant, obj, _, _ = stored
    r = client.get(obj["id"], tenant=tenant, headers={"Range": header})
    assert_error(r, 416, header)
    assert r.headers.get("Content-Range") == f"bytes */{SIZE}", describe(r)


@pytest.mark.parametrize("header", ["bytes=0-1x", "bytes=x-5", "bytes=5-1", "bytes=0--1"])
def test_invalid_range_syntax_is_ignored(client, stored, header):
    tenant, obj, _, data = stored
    r = client.get(obj["id"], tenant=tenant, headers={"Range": header})
    assert r.status_code == 200, describe(r, header)
    assert r.content == data


def test_overlong_range_by_key_too(client, stored):
    tenant, _, _, data = stored
    r = client.get_by_key(NS, tenant, "ranged", headers={"Range": "bytes=100-18446744073709551615"})
    assert r.status_code == 206, describe(r)
    assert r.headers["Content-Range"] == f"bytes 100-{SIZE - 1}/{SIZE}"
    assert r.content == data[100:]


# ---------------------------------------------------------------------------------------
# Methods: 501 for a method the server does not know, 405 + Allow on the wrong route
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["FOO", "BREW", "PROPFIND", "MKCOL"])
@pytest.mark.parametrize("path", ["/v1/objects/x", "/v1/objects", "/health", "/nowhere"])
def test_unknown_method_is_501(client, method, path):
    r = client.request(method, path)
    assert_error(r, 501, f"{method} {path}")
    assert "Allow" not in r.headers, describe(r)


ROUTES = [
    ("/health", "GET, HEAD"),
    ("/ready", "GET, HEAD"),
    ("/metrics", "GET, HEAD"),
    ("/v1/usage?tenant=t", "GET, HEAD"),
    ("/v1/objects", "GET, HEAD, POST, PUT"),
    ("/v1/objects/00000000-0000-4000-8000-000000000000", "GET, HEAD, DELETE"),
    ("/v1/objects/by-key/ns/t/some/key", "GET, HEAD, DELETE"),
]


@pytest.mark.parametrize("path,allow", ROUTES, ids=[r[0] for r in ROUTES])
def test_known_method_on_the_wrong_route_is_405_with_allow(client, path, allow):
    allowed = {m.strip() for m in allow.split(",")}
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        if method in allowed:
            continue
        r = client.request(method, path, headers={"X-Tenant": "t"})
        assert r.status_code == 405, describe(r, f"{method} {path}")
        assert r.headers.get("Allow") == allow, describe(r)
        if method != "HEAD":
            assert_error(r, 405, f"{method} {path}")


def test_unknown_path_with_a_known_method_is_still_404(client):
    assert_error(client.request("GET", "/v2/anything"), 404)


def test_raw_unknown_method_gets_501_and_the_connection_lives(client):
    raw = raw_exchange(client.server.port,
                       b"FOO /v1/objects/x HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert parse_status(raw) == 501, raw[:300]
    assert raw.count(b"HTTP/1.1 200") == 1, raw[:600]


# ---------------------------------------------------------------------------------------
# Revoked keys
#   Decision: a revoked key is reported as revoked only when the request carries its whole
#   secret. Its holder learns nothing new (the key id is part of the key it sent). Anyone
#   else naming the key id with a wrong secret gets the answer an unknown key gets, so key
#   ids of other tenants cannot be probed for "exists but revoked".
# ---------------------------------------------------------------------------------------
def test_revoked_key_is_reported_as_revoked(client, server):
    tenant = "rev" + h.key_id_of(h.generate_api_key())[:8]
    key = h.create_key(server.data_dir, [tenant], "write")
    c = client.clone(key=key)
    assert c.list(namespace=NS, tenant=tenant).status_code == 200
    h.revoke_key(server.data_dir, key)
    assert h.wait_until(lambda: c.list(namespace=NS, tenant=tenant).status_code == 401,
                        timeout=5), "the revoked key was still accepted after 5 s"
    err = assert_error(c.list(namespace=NS, tenant=tenant), 401, "revoked key")
    assert err["message"] == f"the API key {h.key_id_of(key)} was revoked", err
    # Same key id, wrong secret: indistinguishable from a key that never existed.
    wrong = f"cairn_{h.key_id_of(key)}_{h.generate_api_key().split('_', 2)[2]}"
    unknown = h.generate_api_key()
    e_wrong = assert_error(client.clone(key=wrong).list(namespace=NS, tenant=tenant), 401)
    e_unknown = assert_error(client.clone(key=unknown).list(namespace=NS, tenant=tenant), 401)
    assert e_wrong["message"] == e_unknown["message"], (e_wrong, e_unknown)
    assert "revoked" not in e_wrong["message"]


# ---------------------------------------------------------------------------------------
# Usage hides the internal multipart namespaces
# ---------------------------------------------------------------------------------------
def test_usage_lists_no_internal_namespace(client, stored):
    tenant, _, _, _ = stored
    usage = client.usage_json(tenant)
    names = {row["namespace"] for row in usage["namespaces"]}
    assert names == {NS}, usage
    assert not any(n.startswith(".") for n in names), usage
    assert usage["incomplete_multipart"] == {"parts": 0, "logical_bytes": 0,
                                             "physical_bytes": 0}, usage
    rows = usage["namespaces"]
    assert usage["total"]["objects"] == sum(r["objects"] for r in rows)
    assert usage["total"]["logical_bytes"] == sum(r["logical_bytes"] for r in rows)
