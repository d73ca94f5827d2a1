"""Credentials and tenant isolation: API keys (tenants, scopes, revocation), HS256 JWTs,
and the JSON error bodies of 401/403."""
from __future__ import annotations

import time
import uuid

import pytest

import cairn_harness as h
from cairn_harness import assert_error, describe, make_jwt

NS = "auth"


@pytest.fixture(scope="module")
def tenants():
    suffix = uuid.uuid4().hex[:6]
    return f"alpha{suffix}", f"beta{suffix}"


@pytest.fixture(scope="module")
def keys(server, tenants):
    a, b = tenants
    return {
        "a_write": h.create_key(server.data_dir, [a], "write"),
        "b_write": h.create_key(server.data_dir, [b], "write"),
        "a_read": h.create_key(server.data_dir, [a], "read"),
        "ab_write": h.create_key(server.data_dir, [a, b], "write"),
    }


@pytest.fixture(scope="module")
def b_object(client, tenants):
    """An object of tenant B, written with the admin key."""
    _, b = tenants
    return client.put(b"tenant B secret data", tenant=b, namespace=NS, key="private/doc")


def as_key(client, key):
    return client.clone(key=key)


def test_tenant_a_key_works_on_tenant_a(client, keys, tenants):
    a, _ = tenants
    ca = as_key(client, keys["a_write"])
    obj = ca.put(b"mine", tenant=a, namespace=NS, key="own")
    assert ca.get(obj["id"], tenant=a).content == b"mine"
    assert ca.get_by_key(NS, a, "own").content == b"mine"
    assert [o["key"] for o in ca.list_all(namespace=NS, tenant=a)] == ["own"]
    assert ca.usage(a).status_code == 200
    assert ca.delete(obj["id"], tenant=a).status_code == 204


def test_tenant_a_cannot_touch_tenant_b(client, keys, tenants, b_object):
    a, b = tenants
    ca = as_key(client, keys["a_write"])
    oid = b_object["id"]

    assert_error(ca.get(oid, tenant=b), 403, "GET B's id naming B")
    assert ca.get(oid, tenant=b, method="HEAD").status_code == 403
    assert_error(ca.get_by_key(NS, b, "private/doc"), 403, "GET by key in B")
    assert_error(ca.list(namespace=NS, tenant=b), 403, "list B")
    assert_error(ca.usage(b), 403, "usage of B")
    assert_error(ca.upload(b"overwrite attempt", tenant=b, namespace=NS, key="private/doc"),
                 403, "overwrite B's key")
    assert_error(ca.upload(b"new", tenant=b, namespace=NS, key="planted"), 403, "write to B")
    assert_error(ca.delete(oid, tenant=b), 403, "DELETE B's id naming B")
    assert_error(ca.delete_by_key(NS, b, "private/doc"), 403, "DELETE by key in B")

    # Naming its own tenant, A cannot even tell that B's id exists.
    assert_error(ca.get(oid, tenant=a), 404, "GET B's id naming A")
    assert ca.get(oid, tenant=a, method="HEAD").status_code == 404
    assert_error(ca.delete(oid, tenant=a), 404, "DELETE B's id naming A")
    assert ca.get_by_key(NS, a, "private/doc").status_code == 404

    # B's data is untouched.
    r = client.get(oid, tenant=b)
    assert r.status_code == 200 and r.content == b"tenant B secret data"
    assert [o["key"] for o in client.list_all(namespace=NS, tenant=b)] == ["private/doc"]


def test_admin_key_naming_the_wrong_tenant_gets_404(client, tenants, b_object):
    a, _ = tenants
    assert_error(client.get(b_object["id"], tenant=a), 404, "admin: B's id with X-Tenant A")


def test_multi_tenant_key(client, keys, tenants):
    a, b = tenants
    cab = as_key(client, keys["ab_write"])
    for t in (a, b):
        obj = cab.put(b"both", tenant=t, namespace=NS, key="multi")
        assert cab.get(obj["id"], tenant=t).content == b"both"
    assert_error(cab.list(namespace=NS, tenant="gamma" + a), 403, "third tenant")


def test_read_scope_cannot_write_or_delete(client, keys, tenants):
    a, _ = tenants
    obj = client.put(b"read only", tenant=a, namespace=NS, key="ro/doc")
    cr = as_key(client, keys["a_read"])
    assert cr.get(obj["id"], tenant=a).content == b"read only"
    assert cr.get_by_key(NS, a, "ro/doc").status_code == 200
    assert cr.list(namespace=NS, tenant=a).status_code == 200
    assert cr.usage(a).status_code == 200
    assert_error(cr.upload(b"x", tenant=a, namespace=NS, key="ro/new"), 403, "read key POST")
    assert_error(cr.upload(b"x", tenant=a, namespace=NS, key="ro/doc"), 403, "read key PUT")
    assert_error(cr.delete(obj["id"], tenant=a), 403, "read key DELETE")
    assert_error(cr.delete_by_key(NS, a, "ro/doc"), 403, "read key DELETE by key")
    r = client.get_by_key(NS, a, "ro/doc")
    assert r.status_code == 200 and r.content == b"read only"
    assert client.get_by_key(NS, a, "ro/new").status_code == 404


def test_no_or_bad_credentials_get_401(client, tenants, b_object):
    _, b = tenants
    oid = b_object["id"]
    real = client.key
    key_id = h.key_id_of(real)
    bad_headers = [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer cairn_zz"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": real},  # no scheme
        {"Authorization": "Bearer " + h.generate_api_key()},  # well-formed, unknown
        {"Authorization": f"Bearer cairn_{key_id}_{'A' * 43}"},  # known id, wrong secret
        {"Authorization": "Bearer " + real[:-1]},  # truncated secret
        {"X-API-Key": "not-a-key"},
        {"X-API-Key": f"cairn_{key_id}_{'B' * 43}"},
    ]
    anonymous = client.clone(key=None)
    for headers in bad_headers:
        label = f"{list(headers)} {str(headers)[:40]}"
        for r in (
            anonymous.request("GET", f"/v1/objects/{oid}", headers={"X-Tenant": b, **headers}),
            anonymous.request("POST", "/v1/objects", data=b"x",
                              headers={"X-Tenant": b, "X-Namespace": NS, "X-Key": "anon",
                                       **headers}),
            anonymous.request("DELETE", f"/v1/objects/{oid}", headers={"X-Tenant": b, **headers}),
            anonymous.request("GET", f"/v1/objects?namespace={NS}&tenant={b}", headers=headers),
            anonymous.request("GET", f"/v1/usage?tenant={b}", headers=headers),
        ):
            assert_error(r, 401, label)
    r = client.get(oid, tenant=b)
    assert r.status_code == 200 and r.content == b"tenant B secret data"
    assert client.get_by_key(NS, b, "anon").status_code == 404


def test_probes_need_no_credentials(client):
    anonymous = client.clone(key=None)
    assert anonymous.request("GET", "/health").status_code == 200
    assert anonymous.request("GET", "/ready").status_code == 200
    assert anonymous.request("GET", "/metrics").status_code == 200


def jwt_client(client, server, claims, **kwargs):
    return client.clone(key=make_jwt(server.jwt_secret, claims, **kwargs))


def test_valid_jwt_for_its_tenant(client, server, tenants):
    a, b = tenants
    now = int(time.time())
    cj = jwt_client(client, server, {"tenant": a, "scope": "write", "exp": now + 300})
    obj = cj.put(b"jwt upload", tenant=a, namespace=NS, key="jwt/one")
    r = cj.get(obj["id"], tenant=a)
    assert r.status_code == 200 and r.content == b"jwt upload"
    assert_error(cj.list(namespace=NS, tenant=b), 403, "JWT for A listing B")
    assert_error(cj.upload(b"x", tenant=b, namespace=NS, key="jwt/x"), 403, "JWT for A -> B")

    multi = jwt_client(client, server, {"tenants": [a, b], "scope": "read", "exp": now + 300,
                                        "nbf": now - 10})
    assert multi.list(namespace=NS, tenant=a).status_code == 200
    assert multi.list(namespace=NS, tenant=b).status_code == 200
    assert_error(multi.upload(b"x", tenant=a, namespace=NS, key="jwt/ro"), 403,
                 "read-scoped JWT POST")
    assert_error(multi.delete(obj["id"], tenant=a), 403, "read-scoped JWT DELETE")
    assert client.get(obj["id"], tenant=a).status_code == 200


def test_invalid_jwts_get_401(client, server, tenants):
    a, _ = tenants
    now = int(time.time())
    secret = server.jwt_secret
    good = make_jwt(secret, {"tenant": a, "scope": "write", "exp": now + 300})
    head, payload, signature = good.split(".")
    other_payload = h.b64url(
        ('{"tenant":"%s","scope":"admin","exp":%d}' % (a, now + 300)).encode())
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    tokens = {
        "expired": make_jwt(secret, {"tenant": a, "scope": "write", "exp": now - 3600}),
        "not yet valid": make_jwt(secret, {"tenant": a, "scope": "write", "exp": now + 7200,
                                           "nbf": now + 3600}),
        "no exp": make_jwt(secret, {"tenant": a, "scope": "write"}),
        "wrong secret": make_jwt("not-the-secret-" + secret, {"tenant": a, "scope": "write",
                                                              "exp": now + 300}),
        "tampered payload": f"{head}.{other_payload}.{signature}",
        "tampered signature": f"{head}.{payload}.{flipped}",
        "no signature": f"{head}.{payload}.",
        "alg none": make_jwt(None, {"tenant": a, "scope": "write", "exp": now + 300},
                             alg="none"),
        "alg none with sig": make_jwt(None, {"tenant": a, "scope": "write", "exp": now + 300},
                                      alg="none") + signature,
        "alg HS512 label": make_jwt(secret, {"tenant": a, "scope": "write", "exp": now + 300},
                                    alg="HS512"),
        "two segments": f"{head}.{payload}",
        "garbage": "eyJ.eyJ.sig",
        "bad scope": make_jwt(secret, {"tenant": a, "scope": "root", "exp": now + 300}),
    }
    for label, token in tokens.items():
        c = client.clone(key=token)
        assert_error(c.list(namespace=NS, tenant=a), 401, f"JWT {label}")
        assert_error(c.upload(b"x", tenant=a, namespace=NS, key="jwt/bad"), 401, f"JWT {label}")
    assert client.get_by_key(NS, a, "jwt/bad").status_code == 404
    # The untampered token still works (so the 401s above are about the tampering).
    assert client.clone(key=good).list(namespace=NS, tenant=a).status_code == 200


def test_revoked_key_gets_401(client, server, tenants):
    a, _ = tenants
    key = h.create_key(server.data_dir, [a], "write")
    c = as_key(client, key)
    assert c.list(namespace=NS, tenant=a).status_code == 200
    listing = h.run_cli(server.data_dir, ["keys", "list"])
    assert listing.returncode == 0, h.cli_summary(listing)
    assert h.key_id_of(key) in listing.stdout
    h.revoke_key(server.data_dir, key)
    status = h.wait_until(lambda: c.list(namespace=NS, tenant=a).status_code == 401, timeout=5)
    assert status, "a revoked key was still accepted 5 s after `cairn keys revoke`"
    assert_error(c.list(namespace=NS, tenant=a), 401, "revoked key")
    assert_error(c.upload(b"x", tenant=a, namespace=NS, key="after-revoke"), 401, "revoked")
    # Other keys are unaffected.
    assert client.list(namespace=NS, tenant=a).status_code == 200


def test_key_created_while_running_works_at_once(client, server, tenants):
    a, _ = tenants
    key = h.create_key(server.data_dir, [a], "read")
    c = as_key(client, key)
    ok = h.wait_until(lambda: c.list(namespace=NS, tenant=a).status_code == 200, timeout=3)
    assert ok, describe(c.list(namespace=NS, tenant=a))
