"""Upload, download, HEAD, Range, conditional GET, overwrite, delete, checksums, metadata
and size boundaries of the native API, as a user of the HTTP contract sees them."""
from __future__ import annotations

import base64
import email.utils
import hashlib
import urllib.parse

import pytest

import cairn_harness as h
from cairn_harness import KiB, MiB, assert_error, describe, sha256_hex

NS = "objects"


def check_object_json(obj: dict, *, tenant: str, namespace: str, key: str, data: bytes,
                      storage_class: str = "hot") -> None:
    for field in h.OBJECT_FIELDS:
        assert field in obj, f"object JSON lacks {field!r}: {obj}"
    assert h.UUID_PATTERN.match(obj["id"]), obj
    assert obj["tenant_id"] == tenant
    assert obj["namespace"] == namespace
    assert obj["key"] == key
    assert obj["size_bytes"] == len(data)
    assert obj["content_hash"] == "sha256:" + sha256_hex(data)
    assert obj["storage_class"] == storage_class
    assert h.RFC3339_UTC_PATTERN.match(obj["created_at"]), obj["created_at"]


def check_download_headers(r, obj: dict, data: bytes) -> None:
    digest = sha256_hex(data)
    assert r.headers.get("ETag") == f'"{digest}"', describe(r)
    assert r.headers.get("X-Content-SHA256", "").lower() == digest, describe(r)
    assert r.headers.get("X-Object-Id", "").lower() == obj["id"].lower(), describe(r)
    assert urllib.parse.unquote(r.headers.get("X-Key", "")) == obj["key"], describe(r)
    assert email.utils.parsedate_to_datetime(r.headers["Last-Modified"]) is not None
    assert "Content-Type" in r.headers
    if r.request.method == "HEAD" or r.status_code == 200:
        assert int(r.headers["Content-Length"]) == len(data), describe(r)


def test_upload_then_download_by_id_and_key(client, tenant):
    data = b"hello, cairn\n"
    r = client.upload(data, tenant=tenant, namespace=NS, key="greeting.txt",
                      content_type="text/plain; charset=utf-8")
    assert r.status_code == 201, describe(r)
    assert r.headers.get("Content-Type", "").startswith("application/json")
    obj = r.json()
    check_object_json(obj, tenant=tenant, namespace=NS, key="greeting.txt", data=data)
    assert obj["content_type"] == "text/plain; charset=utf-8"

    r = client.get(obj["id"], tenant=tenant)
    assert r.status_code == 200, describe(r)
    assert r.content == data
    check_download_headers(r, obj, data)
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"

    r = client.get_by_key(NS, tenant, "greeting.txt")
    assert r.status_code == 200, describe(r)
    assert r.content == data
    check_download_headers(r, obj, data)


def test_x_api_key_header_is_a_credential(client, tenant):
    other = client.clone()
    other.use_x_api_key = True
    obj = other.put(b"via x-api-key", tenant=tenant, namespace=NS, key="k")
    assert other.get(obj["id"], tenant=tenant).content == b"via x-api-key"


def test_cold_storage_class(client, tenant):
    data = h.pseudo_random_bytes(200 * KiB, "cold")
    obj = client.put(data, tenant=tenant, namespace=NS, key="cold/one", storage_class="cold")
    check_object_json(obj, tenant=tenant, namespace=NS, key="cold/one", data=data,
                      storage_class="cold")
    r = client.get(obj["id"], tenant=tenant)
    assert r.status_code == 200 and r.content == data


KEYS = [
    "plain.txt",
    "dir/sub/deeper/file.bin",
    "with space/and more spaces .txt",
    "unicode/ключ/日本語/café.txt",
    "emoji/😀🚀",
    "a//double//slash",
    "trailing/slash/",
    "/leading-slash",
    "percent%41literal%",
    "plus+sign&amp=eq",
    "question?mark#hash;semi",
    "dots/./and/../again",
    "tab\tand\"quote'",
    "x" * 1024,
    "é" * 512,  # 1024 bytes of UTF-8
]


@pytest.mark.parametrize("key", KEYS, ids=[f"key{i}" for i in range(len(KEYS))])
def test_keys_round_trip(client, tenant, key):
    data = ("content of " + key).encode()
    obj = client.put(data, tenant=tenant, namespace=NS, key=key)
    check_object_json(obj, tenant=tenant, namespace=NS, key=key, data=data)

    r = client.get_by_key(NS, tenant, key)
    assert r.status_code == 200, describe(r)
    assert r.content == data
    assert r.headers.get("X-Object-Id", "").lower() == obj["id"].lower()

    r = client.get(obj["id"], tenant=tenant)
    assert r.status_code == 200 and r.content == data
    assert urllib.parse.unquote(r.headers["X-Key"]) == key

    listed = client.list_all(namespace=NS, tenant=tenant, prefix=key)
    assert [o["key"] for o in listed] == [key]
    assert listed[0]["id"] == obj["id"]


def test_unencoded_x_key_with_slashes_and_spaces(client, tenant):
    key = "reports/2024 q3/summary final.pdf"
    r = client.upload(b"pdf", tenant=tenant, namespace=NS, key=key, raw_key_header=True)
    assert r.status_code == 201, describe(r)
    assert r.json()["key"] == key
    assert client.get_by_key(NS, tenant, key).content == b"pdf"


def test_percent_encoded_x_key_is_decoded(client, tenant):
    r = client.upload(b"x", tenant=tenant, namespace=NS, key="caf%C3%A9/%E6%97%A5%20sp",
                      raw_key_header=True)
    assert r.status_code == 201, describe(r)
    assert r.json()["key"] == "café/日 sp"
    assert client.get_by_key(NS, tenant, "café/日 sp").content == b"x"


def test_head_by_id_and_by_key(client, tenant):
    data = h.pseudo_random_bytes(5000, "head")
    obj = client.put(data, tenant=tenant, namespace=NS, key="head/me",
                     content_type="application/x-test", meta={"Color": "blue"})
    for r in (client.get(obj["id"], tenant=tenant, method="HEAD"),
              client.get_by_key(NS, tenant, "head/me", method="HEAD")):
        assert r.status_code == 200, describe(r)
        assert r.content == b""
        check_download_headers(r, obj, data)
        assert r.headers["Content-Type"] == "application/x-test"
        assert r.headers.get("X-Meta-Color") == "blue"
    r = client.get("00000000-0000-4000-8000-000000000000", tenant=tenant, method="HEAD")
    assert r.status_code == 404


def test_range_requests(client, tenant):
    data = h.pseudo_random_bytes(1000, "range")
    obj = client.put(data, tenant=tenant, namespace=NS, key="range/1000")
    cases = [("bytes=0-99", 0, 99), ("bytes=990-", 990, 999), ("bytes=-5", 995, 999),
             ("bytes=500-500", 500, 500), ("bytes=0-", 0, 999), ("bytes=100-5000", 100, 999),
             ("bytes=-2000", 0, 999)]
    for spec, first, last in cases:
        for r in (client.get(obj["id"], tenant=tenant, headers={"Range": spec}),
                  client.get_by_key(NS, tenant, "range/1000", headers={"Range": spec})):
            assert r.status_code == 206, describe(r, spec)
            assert r.content == data[first:last + 1], spec
            assert r.headers.get("Content-Range") == f"bytes {first}-{last}/1000", describe(r)
            assert int(r.headers["Content-Length"]) == last - first + 1

    for spec in ("bytes=1000-", "bytes=5000-6000", "bytes=1000-1000"):
        r = client.get(obj["id"], tenant=tenant, headers={"Range": spec})
        assert_error(r, 416, spec)
        assert r.headers.get("Content-Range") in (None, "bytes */1000"), describe(r)


def test_range_on_empty_object_is_unsatisfiable(client, tenant):
    obj = client.put(b"", tenant=tenant, namespace=NS, key="range/empty")
    r = client.get(obj["id"], tenant=tenant, headers={"Range": "bytes=0-0"})
    assert r.status_code == 416, describe(r)


def test_etag_and_if_none_match(client, tenant):
    data = b"conditional"
    obj = client.put(data, tenant=tenant, namespace=NS, key="etag/1")
    r = client.get(obj["id"], tenant=tenant)
    etag = r.headers["ETag"]
    assert etag == f'"{sha256_hex(data)}"'

    for match in (etag, f'"0000", {etag}'):
        r = client.get(obj["id"], tenant=tenant, headers={"If-None-Match": match})
        assert r.status_code == 304, describe(r, match)
        assert r.content == b""
        assert r.headers.get("ETag") == etag
        r = client.get_by_key(NS, tenant, "etag/1", headers={"If-None-Match": match})
        assert r.status_code == 304, describe(r, match)

    r = client.get(obj["id"], tenant=tenant, headers={"If-None-Match": '"' + "0" * 64 + '"'})
    assert r.status_code == 200 and r.content == data

    # Identical content has the identical ETag, wherever it lives.
    twin = client.put(data, tenant=tenant, namespace=NS, key="etag/2")
    assert client.get(twin["id"], tenant=tenant).headers["ETag"] == etag
    # New content at the key: the old ETag no longer matches.
    client.put(b"changed", tenant=tenant, namespace=NS, key="etag/1")
    r = client.get_by_key(NS, tenant, "etag/1", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.content == b"changed"


@pytest.mark.parametrize("size", [100, 5 * MiB + 3], ids=["inline", "chunked"])
def test_md5_only_when_asked(client, tenant, size):
    data = bytes((i * 7 + 3) % 251 for i in range(size))
    md5 = hashlib.md5(data)
    plain = client.put(data, tenant=tenant, namespace=NS, key="md5/plain")
    assert plain["etag"] == sha256_hex(data)[:32] + "-1"
    asked = client.put(data, tenant=tenant, namespace=NS, key="md5/asked",
                       headers={"X-Compute-MD5": "true"})
    assert asked["etag"] == md5.hexdigest()
    verified = client.put(data, tenant=tenant, namespace=NS, key="md5/verified",
                          headers={"Content-MD5": base64.b64encode(md5.digest()).decode()})
    assert verified["etag"] == md5.hexdigest()
    wrong = client.upload(data, tenant=tenant, namespace=NS, key="md5/wrong",
                          headers={"Content-MD5": base64.b64encode(b"x" * 16).decode()})
    assert_error(wrong, 400, "InvalidArgument")
    assert client.get_by_key(NS, tenant, "md5/wrong").status_code == 404
    bad = client.upload(data, tenant=tenant, namespace=NS, key="md5/bad",
                        headers={"Content-MD5": "not base64!"})
    assert_error(bad, 400, "InvalidArgument")


def test_overwrite_gives_new_id_and_old_id_disappears(client, tenant):
    first = client.put(b"version one", tenant=tenant, namespace=NS, key="doc")
    second = client.put(b"version two!", tenant=tenant, namespace=NS, key="doc")
    assert second["id"] != first["id"]
    assert_error(client.get(first["id"], tenant=tenant), 404, "old id after overwrite")
    r = client.get_by_key(NS, tenant, "doc")
    assert r.status_code == 200 and r.content == b"version two!"
    r = client.get(second["id"], tenant=tenant)
    assert r.status_code == 200 and r.content == b"version two!"
    listed = client.list_all(namespace=NS, tenant=tenant, prefix="doc")
    assert [(o["key"], o["id"], o["size_bytes"]) for o in listed] == \
        [("doc", second["id"], len(b"version two!"))]
    assert_error(client.delete(first["id"], tenant=tenant), 404, "delete of replaced id")
    assert client.get_by_key(NS, tenant, "doc").content == b"version two!"


def test_delete_by_id(client, tenant):
    obj = client.put(b"short-lived", tenant=tenant, namespace=NS, key="tmp/a")
    r = client.delete(obj["id"], tenant=tenant)
    assert r.status_code == 204, describe(r)
    assert r.content == b""
    assert_error(client.get(obj["id"], tenant=tenant), 404, "get after delete")
    assert client.get(obj["id"], tenant=tenant, method="HEAD").status_code == 404
    assert_error(client.get_by_key(NS, tenant, "tmp/a"), 404, "get by key after delete")
    assert client.list_all(namespace=NS, tenant=tenant, prefix="tmp/") == []
    assert_error(client.delete(obj["id"], tenant=tenant), 404, "second delete")


def test_delete_by_key(client, tenant):
    obj = client.put(b"by key", tenant=tenant, namespace=NS, key="tmp/with space/é")
    r = client.delete_by_key(NS, tenant, "tmp/with space/é")
    assert r.status_code == 204, describe(r)
    assert client.get(obj["id"], tenant=tenant).status_code == 404
    assert client.get_by_key(NS, tenant, "tmp/with space/é").status_code == 404
    assert_error(client.delete_by_key(NS, tenant, "tmp/with space/é"), 404, "second delete")
    # The key can be used again afterwards.
    again = client.put(b"reborn", tenant=tenant, namespace=NS, key="tmp/with space/é")
    assert again["id"] != obj["id"]
    assert client.get_by_key(NS, tenant, "tmp/with space/é").content == b"reborn"


def test_correct_sha256_header_is_accepted(client, tenant):
    data = h.pseudo_random_bytes(100 * KiB, "sha-ok")
    r = client.upload(data, tenant=tenant, namespace=NS, key="sha/ok", sha256=sha256_hex(data))
    assert r.status_code == 201, describe(r)
    assert r.json()["content_hash"] == "sha256:" + sha256_hex(data)


@pytest.mark.parametrize("size", [10, 5 * MiB], ids=["small", "multi-chunk"])
def test_wrong_sha256_header_is_rejected_and_stores_nothing(client, tenant, size):
    data = h.pseudo_random_bytes(size, f"sha-bad-{size}")
    existing = client.put(b"keep me", tenant=tenant, namespace=NS, key="sha/existing")
    before = client.snapshot(tenant, [NS])
    wrong = sha256_hex(data + b"x")
    for key in ("sha/new", "sha/existing"):
        r = client.upload(data, tenant=tenant, namespace=NS, key=key, sha256=wrong)
        assert_error(r, 400, "upload with a wrong X-Content-SHA256")
    assert client.snapshot(tenant, [NS]) == before
    assert client.get_by_key(NS, tenant, "sha/new").status_code == 404
    r = client.get_by_key(NS, tenant, "sha/existing")
    assert r.status_code == 200 and r.content == b"keep me"
    assert client.get(existing["id"], tenant=tenant).status_code == 200


def test_malformed_sha256_header_is_rejected(client, tenant):
    for bad in ("xyz", "0" * 63, "g" * 64, "sha256:" + "0" * 64):
        r = client.upload(b"data", tenant=tenant, namespace=NS, key="sha/malformed", sha256=bad)
        assert_error(r, 400, f"X-Content-SHA256: {bad}")
    assert client.list_all(namespace=NS, tenant=tenant) == []


def test_user_metadata_round_trip(client, tenant):
    meta = {"Owner": "alice", "Project": "cairn 2024", "Build-Number": "42"}
    obj = client.put(b"meta", tenant=tenant, namespace=NS, key="meta/1", meta=meta)
    for r in (client.get(obj["id"], tenant=tenant), client.get_by_key(NS, tenant, "meta/1"),
              client.get(obj["id"], tenant=tenant, method="HEAD")):
        assert r.status_code == 200
        for name, value in meta.items():
            assert r.headers.get(f"X-Meta-{name}") == value, describe(r)
    # Overwriting replaces the metadata too.
    client.put(b"meta2", tenant=tenant, namespace=NS, key="meta/1", meta={"Owner": "bob"})
    r = client.get_by_key(NS, tenant, "meta/1")
    assert r.headers.get("X-Meta-Owner") == "bob"
    assert r.headers.get("X-Meta-Project") is None


SIZES = [0, 1, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1,
         20 * MiB]


@pytest.mark.parametrize("size", SIZES, ids=[str(s) for s in SIZES])
def test_size_boundaries(client, tenant, size):
    data = h.pseudo_random_bytes(size, f"size-{size}")
    obj = client.put(data, tenant=tenant, namespace=NS, key=f"size/{size}")
    check_object_json(obj, tenant=tenant, namespace=NS, key=f"size/{size}", data=data)

    r = client.get(obj["id"], tenant=tenant, stream=True)
    assert r.status_code == 200
    hasher, received = hashlib.sha256(), 0
    for block in r.iter_content(1 * MiB):
        hasher.update(block)
        received += len(block)
    assert received == size
    assert hasher.hexdigest() == sha256_hex(data)

    head = client.get(obj["id"], tenant=tenant, method="HEAD")
    assert int(head.headers["Content-Length"]) == size
    if size >= 2:
        # A range that straddles the chunk boundary whenever the object has one.
        first = max(0, min(h.CHUNK_SIZE_BYTES - 5, size - 10))
        last = min(size - 1, first + 9)
        r = client.get(obj["id"], tenant=tenant, headers={"Range": f"bytes={first}-{last}"})
        assert r.status_code == 206, describe(r)
        assert r.content == data[first:last + 1]
    if size > 2 * h.CHUNK_SIZE_BYTES:
        first, last = h.CHUNK_SIZE_BYTES - 1, 3 * h.CHUNK_SIZE_BYTES + 1  # spans 4 chunks
        r = client.get(obj["id"], tenant=tenant, headers={"Range": f"bytes={first}-{last}"})
        assert r.status_code == 206
        assert r.content == data[first:last + 1]


def test_chunked_transfer_encoding_upload(client, tenant):
    # No empty piece: requests would send it as the terminating 0-size chunk.
    pieces = [h.pseudo_random_bytes(n, f"te-{i}") for i, n in
              enumerate([1, 1000, 64 * KiB, 3 * MiB, 2 * MiB + 7, 12345])]
    data = b"".join(pieces)

    def body():
        yield from pieces  # a generator makes requests send Transfer-Encoding: chunked

    r = client.upload(body(), tenant=tenant, namespace=NS, key="chunked/big",
                      sha256=sha256_hex(data))
    assert r.status_code == 201, describe(r)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    check_object_json(r.json(), tenant=tenant, namespace=NS, key="chunked/big", data=data)
    assert client.get_by_key(NS, tenant, "chunked/big").content == data

    r = client.upload(iter([]), tenant=tenant, namespace=NS, key="chunked/empty")
    assert r.status_code == 201, describe(r)
    assert r.json()["size_bytes"] == 0
    r = client.get_by_key(NS, tenant, "chunked/empty")
    assert r.status_code == 200 and r.content == b""


def test_identical_content_under_many_keys_reads_back(client, tenant):
    data = h.pseudo_random_bytes(4 * MiB + 3, "dedup")
    ids = [client.put(data, tenant=tenant, namespace=NS, key=f"dup/{i}")["id"]
           for i in range(3)]
    assert len(set(ids)) == 3
    assert client.delete(ids[0], tenant=tenant).status_code == 204
    for object_id in ids[1:]:
        r = client.get(object_id, tenant=tenant)
        assert r.status_code == 200 and r.content == data
