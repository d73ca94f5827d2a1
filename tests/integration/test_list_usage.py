"""Listing (prefix, limit, cursor pagination, byte-wise order, stability under concurrent
writes) and usage accounting (logical vs physical bytes, dedup per class, GC)."""
from __future__ import annotations

import os

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import cairn_harness as h
from cairn_harness import MiB, assert_error, describe, usage_row

NS = "listing"


def totals(usage: dict) -> tuple:
    t = usage["total"]
    return t["objects"], t["logical_bytes"], t["physical_bytes"]


def byte_order(keys):
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def make_keys(count: int) -> list[str]:
    """Keys whose byte-wise order differs from naive orders (case, unicode, separators)."""
    specials = ["A", "Z", "a", "z", "0", "9", "_", "-", ".", "~", "obj", "obj/", "obj-", "obj.",
                "obj0", "objZ", "Obj/1", "OBJ/1", "é", "éa", "e\u0301", "ü/x", "日本", "😀",
                "ÿ", "\u00a0nbsp", "space key", "space/key", "obj/ä", "obj/Z", "obj/z", "obj/~"]
    keys = list(specials)
    i = 0
    while len(keys) < count:
        keys.append(f"obj/{i:05d}" if i % 5 else f"obj/{i:05d}/nested/{i % 7}")
        i += 1
    assert len(set(keys)) == count
    return keys


@pytest.fixture(scope="module")
def big_tenant(client):
    """2,500 objects in one namespace (uploaded with a few threads)."""
    tenant = "big" + uuid.uuid4().hex[:8]
    keys = make_keys(2500)
    local = threading.local()

    def put(key):
        if not hasattr(local, "client"):
            local.client = client.clone()
        r = local.client.upload(key.encode(), tenant=tenant, namespace=NS, key=key)
        assert r.status_code == 201, describe(r)
        return r.json()["id"]

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(put, keys))
    return tenant, dict(zip(keys, ids))


def paginate(client, tenant, *, limit, prefix=None):
    """Pages of (keys, page json); checks page invariants."""
    pages = []
    cursor = None
    for _ in range(20000):
        r = client.list(namespace=NS, tenant=tenant, prefix=prefix, limit=limit, cursor=cursor)
        assert r.status_code == 200, describe(r)
        page = r.json()
        assert set(page) >= {"objects", "next_cursor", "truncated"}, page.keys()
        if limit is not None:
            assert len(page["objects"]) <= limit
        pages.append(page)
        if not page["truncated"]:
            assert page["next_cursor"] is None, page
            return pages
        assert isinstance(page["next_cursor"], str) and page["next_cursor"], page
        cursor = page["next_cursor"]
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("limit", [1000, 7, None], ids=["limit1000", "limit7", "default"])
def test_pagination_covers_every_key_once_in_byte_order(client, big_tenant, limit):
    tenant, ids = big_tenant
    pages = paginate(client, tenant, limit=limit)
    keys = [o["key"] for page in pages for o in page["objects"]]
    assert len(keys) == len(set(keys)), "a key was listed twice"
    assert keys == byte_order(ids), "listing is not every key exactly once in byte order"
    expected_page = limit or 100
    assert all(len(p["objects"]) == expected_page for p in pages[:-1]), \
        "a page before the last one is short"
    assert len(pages) == -(-len(ids) // expected_page)
    for page in pages:
        for o in page["objects"]:
            assert o["id"] == ids[o["key"]]
            assert o["tenant_id"] == tenant and o["namespace"] == NS
            assert o["size_bytes"] == len(o["key"].encode())
            assert o["content_hash"] == "sha256:" + h.sha256_hex(o["key"].encode())


@pytest.mark.parametrize("prefix,limit", [("obj/", 333), ("obj/001", 1), ("obj/0000", 2),
                                          ("é", 1), ("space", 10), ("nothing-here", 5),
                                          ("obj", 1000)])
def test_prefix_listing(client, big_tenant, prefix, limit):
    tenant, ids = big_tenant
    pages = paginate(client, tenant, limit=limit, prefix=prefix)
    keys = [o["key"] for page in pages for o in page["objects"]]
    expected = byte_order(k for k in ids if k.encode().startswith(prefix.encode()))
    assert keys == expected


def test_list_limit_bounds(client, big_tenant):
    tenant, _ = big_tenant
    for bad in (0, 1001, -1, "ten"):
        assert_error(client.list(namespace=NS, tenant=tenant, limit=bad), 400, f"limit={bad}")
    r = client.list(namespace=NS, tenant=tenant, limit=1)
    assert r.status_code == 200 and len(r.json()["objects"]) == 1


def test_list_garbage_cursor_is_not_a_server_error(client, big_tenant):
    tenant, _ = big_tenant
    for cursor in ("garbage!!", "%%%", "\u2603" * 50, "A" * 5000):
        r = client.list(namespace=NS, tenant=tenant, cursor=cursor, limit=5)
        assert r.status_code in (200, 400), describe(r, f"cursor={cursor[:20]}")
        if r.status_code == 400:
            assert_error(r, 400)


def test_list_of_unknown_namespace_is_empty(client, tenant):
    r = client.list(namespace="never-used", tenant=tenant)
    assert r.status_code == 200, describe(r)
    assert r.json()["objects"] == [] and r.json()["truncated"] is False


def test_pagination_under_concurrent_overwrites_and_inserts(client, tenant):
    """Keys that exist throughout appear exactly once per pass, and every pass is strictly
    increasing, while another thread overwrites them and inserts/deletes keys between."""
    stable = [f"k/{i:04d}" for i in range(400)]
    for key in stable:
        client.put(b"v0", tenant=tenant, namespace=NS, key=key)

    stop = threading.Event()
    writes = {"overwrites": 0, "inserts": 0, "deletes": 0}
    writer_errors = []

    def writer():
        c = client.clone()
        rng = random.Random(7)
        inserted = []
        n = 0
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            n += 1
            action = rng.random()
            try:
                if action < 0.45:
                    key = rng.choice(stable)
                    r = c.upload(f"v{n}".encode(), tenant=tenant, namespace=NS, key=key)
                    kind = "overwrites"
                elif action < 0.85 or not inserted:
                    key = rng.choice(stable) + rng.choice(["", "/", "-", "0", "~"]) + f"x{n}"
                    r = c.upload(b"new", tenant=tenant, namespace=NS, key=key)
                    inserted.append(key)
                    kind = "inserts"
                else:
                    key = inserted.pop(rng.randrange(len(inserted)))
                    r = c.delete_by_key(NS, tenant, key)
                    kind = "deletes"
                if r.status_code not in (201, 204):
                    writer_errors.append(describe(r))
                else:
                    writes[kind] += 1
            except Exception as e:  # noqa: BLE001 - reported below
                writer_errors.append(repr(e))
                return

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        for limit in (37, 1, 100):
            pages = paginate(client, tenant, limit=limit)
            keys = [o["key"] for page in pages for o in page["objects"]]
            encoded = [k.encode() for k in keys]
            disorder = [(a, b) for a, b in zip(encoded, encoded[1:]) if not a < b]
            assert not disorder, f"limit {limit}: out of order or repeated: {disorder[:5]}"
            listed = set(keys)
            missing = [k for k in stable if k not in listed]
            assert not missing, f"limit {limit}: stable keys skipped: {missing[:10]}"
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert not writer_errors, writer_errors[:5]
    assert writes["overwrites"] > 20 and writes["inserts"] > 20, writes


def test_usage_dedup_per_class_then_delete_and_gc(server_factory, tenant):
    """The same 100 MiB (CAIRN_DEDUP_MIB) under three hot keys and one cold key: logical
    400 MiB, physical 100 MiB per class. Deleting two keeps the third readable; deleting
    all and running GC frees the space; fsck is clean."""
    srv = server_factory()  # default gc: nothing is collected until `cairn gc` runs
    c = h.Client(srv, srv.admin_key)
    ns = "usage"
    size_mib = int(os.environ.get("CAIRN_DEDUP_MIB", "100"))
    data = h.pseudo_random_bytes(size_mib * MiB, "usage-dedup")
    hot = [c.put(data, tenant=tenant, namespace=ns, key=f"copy/{i}") for i in range(3)]
    cold = c.put(data, tenant=tenant, namespace=ns, key="copy/cold", storage_class="cold")
    ten = size_mib * MiB  # one copy

    usage = c.usage_json(tenant)
    assert usage["tenant"] == tenant
    row_hot, row_cold = usage_row(usage, ns, "hot"), usage_row(usage, ns, "cold")
    assert (row_hot["objects"], row_hot["logical_bytes"], row_hot["physical_bytes"]) == \
        (3, 3 * ten, ten), usage
    assert (row_cold["objects"], row_cold["logical_bytes"], row_cold["physical_bytes"]) == \
        (1, ten, ten), usage
    assert totals(usage) == (4, 4 * ten, 2 * ten), usage
    # On disk: one copy per class.
    assert ten <= h.chunk_bytes_on_disk(srv.data_dir, "hot") < ten + MiB // 2
    assert ten <= h.chunk_bytes_on_disk(srv.data_dir, "cold") < ten + MiB // 2

    for obj in hot[:2]:
        assert c.delete(obj["id"], tenant=tenant).status_code == 204
    r = c.get(hot[2]["id"], tenant=tenant)
    assert r.status_code == 200 and r.content == data
    r = c.get_by_key(ns, tenant, "copy/2")
    assert r.status_code == 200 and r.content == data
    row_hot = usage_row(c.usage_json(tenant), ns, "hot")
    assert (row_hot["objects"], row_hot["logical_bytes"], row_hot["physical_bytes"]) == \
        (1, ten, ten)

    assert c.delete(hot[2]["id"], tenant=tenant).status_code == 204
    assert c.delete_by_key(ns, tenant, "copy/cold").status_code == 204
    assert c.get(cold["id"], tenant=tenant).status_code == 404
    h.gc_now(srv.data_dir, 0)  # while the server runs

    usage = c.usage_json(tenant)
    assert totals(usage) == (0, 0, 0), usage
    for row in usage["namespaces"]:
        assert row["physical_bytes"] == 0 and row["logical_bytes"] == 0, usage
    assert h.chunk_bytes_on_disk(srv.data_dir, "hot") < 64 * 1024
    assert h.chunk_bytes_on_disk(srv.data_dir, "cold") < 64 * 1024
    r = h.run_cli(srv.data_dir, ["fsck"])
    assert r.returncode == 0, h.cli_summary(r)


def test_usage_is_per_namespace_and_tenant(client, tenant):
    other_tenant = tenant + "-b"
    client.put(b"a" * 100, tenant=tenant, namespace="u1", key="x")
    client.put(b"b" * 200, tenant=tenant, namespace="u2", key="x")
    client.put(b"c" * 300, tenant=tenant, namespace="u2", key="y", storage_class="cold")
    client.put(b"d" * 400, tenant=other_tenant, namespace="u1", key="x")
    usage = client.usage_json(tenant)
    assert usage_row(usage, "u1", "hot")["logical_bytes"] == 100
    assert usage_row(usage, "u2", "hot")["logical_bytes"] == 200
    assert usage_row(usage, "u2", "cold")["logical_bytes"] == 300
    assert usage["total"]["objects"] == 3
    assert usage["total"]["logical_bytes"] == 600
    assert {(r["namespace"], r["storage_class"]) for r in usage["namespaces"]
            if r["objects"]} == {("u1", "hot"), ("u2", "hot"), ("u2", "cold")}
    assert client.usage_json(other_tenant)["total"]["logical_bytes"] == 400
