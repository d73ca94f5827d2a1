"""ListObjectsV2 (and a few ListObjects) over 100,000 keys, checked against the Python model
in s3model.py: for a few dozen (prefix, delimiter, max-keys, start-after) combinations the
concatenated pages must be exactly the sorted in-prefix keys and common prefixes, cut into
full pages, with continuation tokens, and (encoding-type=url) correctly encoded keys,
including keys with control characters and non-ASCII.

The keys are created through the native API by many threads on keep-alive connections
(empty objects), which takes seconds. CAIRN_S3_LIST_KEYS shrinks the key count."""
from __future__ import annotations

import concurrent.futures
import http.client
import os
import random
import time
import urllib.parse

import pytest

pytest.importorskip("boto3", reason="python3-boto3 is not installed")

import s3kit  # noqa: E402
import s3model  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.time_limit(600)]

N_KEYS = max(100, int(os.environ.get("CAIRN_S3_LIST_KEYS", "100000")))
UPLOAD_THREADS = 16
POPULATE_DEADLINE_S = 300.0
MAX_PAGES_PER_LISTING = 400

TOPS = ["alpha", "beta", "gamma", "δέλτα", "e e", "f+f", "g%g", "h\x01h", "i-i", "j\tj"]
SPECIAL = ["ctrl\x02/a", "ctrl\x7f/b", "nl\nkey", "cr\rkey", "é/ü", "é/u", "😀/x", "😀",
           "sp ace/ /x", "sp ace/+/y", "trailing/", "//double", "/lead", "a" * 1000,
           "zz/%41", "zz/%2F", "zz/a+b", "zz/a b", "m0m0/m0", "-/-", "-"]


def key_of(i: int) -> str:
    top = TOPS[i % len(TOPS)]
    mid = f"m{(i // len(TOPS)) % 100:03d}"
    leaf = f"k{i:06d}"
    if i % 1000 == 999:
        return f"{top}{i}"  # directly under the top, no delimiter after it
    if i % 13 == 0:
        return f"{top}/{mid}/deep/{leaf}"
    if i % 7 == 0:
        return f"{top}/{mid}/{leaf}-x"
    if i % 101 == 0:
        return f"{top}/{mid}/{leaf}é"
    return f"{top}/{mid}/{leaf}"


ALL_KEYS = s3model.sort_keys([key_of(i) for i in range(N_KEYS)] + SPECIAL)


def make_combos() -> list[dict]:
    rng = random.Random(20240601)
    fixed = [
        dict(explicit_url=True),  # every key, 1000 per page
        dict(delimiter="/"), dict(delimiter="/", max_keys=1),
        dict(prefix="alpha/", delimiter="/", max_keys=7),
        dict(prefix="alpha/m001/", max_keys=50), dict(prefix="alpha/m001/", delimiter="/"),
        dict(prefix="δέλτα/", delimiter="/", explicit_url=True),
        dict(prefix="h\x01h/", delimiter="/", max_keys=33, explicit_url=True),
        dict(prefix="beta/m002/", delimiter="-"), dict(delimiter="m0", max_keys=3),
        dict(prefix="gamma/", delimiter="/", start_after="gamma/m050/k0"),
        dict(start_after=key_of(N_KEYS // 2), max_keys=1000),
        dict(start_after="zzzz"), dict(prefix="nothing"), dict(prefix="e e/", delimiter=" "),
        dict(prefix="ctrl", delimiter="/", explicit_url=True), dict(delimiter="é"),
        dict(prefix="j\tj/m099/", delimiter="/", max_keys=2, explicit_url=True),
        dict(prefix="f+f/m010/k", delimiter="k"), dict(prefix="g%g/", delimiter="/", max_keys=1000),
    ]
    prefixes = ["", "a", "alpha/", "alpha/m0", "beta/m05", "δ", "e e/m00", "g%", "h\x01h/m04",
                "i-i/", "j\tj/m0", "z", "sp ace/", "é", "😀"]
    delimiters = ["", "/", "-", "m0", "\x01", " ", "é", "k0"]
    random_combos = []
    for _ in range(24):
        combo = dict(prefix=rng.choice(prefixes), delimiter=rng.choice(delimiters),
                     max_keys=rng.choice([1, 2, 7, 100, 250, 1000]),
                     explicit_url=rng.random() < 0.5)
        if rng.random() < 0.4:
            combo["start_after"] = rng.choice([key_of(rng.randrange(N_KEYS)),
                                               combo["prefix"] + "m05", "beta/m050/deep/"])
        random_combos.append(combo)
    return fixed + random_combos


COMBOS = make_combos()


def upload_all(port: int, admin_key: str, tenant: str, bucket: str, keys: list[str]) -> None:
    deadline = time.monotonic() + POPULATE_DEADLINE_S

    def worker(offset: int) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        done = 0
        try:
            for key in keys[offset::UPLOAD_THREADS]:
                if time.monotonic() > deadline:
                    raise AssertionError("populating the bucket took too long")
                for attempt in range(3):
                    try:
                        conn.request("POST", "/v1/objects", body=b"", headers={
                            "Authorization": f"Bearer {admin_key}", "X-Tenant": tenant,
                            "X-Namespace": bucket, "Content-Length": "0",
                            "X-Key": urllib.parse.quote(key, safe="")})
                        response = conn.getresponse()
                        text = response.read()
                        break
                    except (ConnectionError, http.client.HTTPException):
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                        if attempt == 2:
                            raise
                assert response.status == 201, (key, response.status, text[:300])
                done += 1
        finally:
            conn.close()
        return done

    with concurrent.futures.ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        counts = list(pool.map(worker, range(UPLOAD_THREADS)))
    assert sum(counts) == len(keys)


@pytest.fixture(scope="module")
def listing_bucket(s3, s3env):
    bucket = s3kit.unique_bucket("list100k")
    s3.create_bucket(Bucket=bucket)
    started = time.monotonic()
    upload_all(s3env.server.port, s3env.server.admin_key, s3env.main.tenant, bucket, ALL_KEYS)
    print(f"\ncreated {len(ALL_KEYS)} keys in {time.monotonic() - started:.1f} s")
    return bucket


def test_every_key_is_listed_once_in_order(s3, listing_bucket):
    got = s3model.fetch_v2_pages(s3, listing_bucket, max_keys=1000,
                                 max_pages=len(ALL_KEYS) // 1000 + 3)
    s3model.compare_pages(got, [("key", k) for k in ALL_KEYS], 1000, "full listing")


@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: repr(c)[:70])
def test_list_objects_v2_matches_model(s3, listing_bucket, combo):
    args = dict(prefix="", delimiter="", start_after="", max_keys=1000)
    args.update({k: v for k, v in combo.items() if k != "explicit_url"})
    expected = s3model.list_entries(ALL_KEYS, prefix=args["prefix"],
                                    delimiter=args["delimiter"], start_after=args["start_after"])
    if len(expected) > args["max_keys"] * MAX_PAGES_PER_LISTING:  # keep the request count sane
        args["max_keys"] = 1000
    started = time.monotonic()
    got = s3model.fetch_v2_pages(s3, listing_bucket, explicit_url=combo.get("explicit_url", False),
                                 max_pages=len(expected) // args["max_keys"] + 3, **args)
    s3model.compare_pages(got, expected, args["max_keys"], f"ListObjectsV2 {combo}")
    assert time.monotonic() - started < 120, "one listing took over two minutes"


@pytest.mark.parametrize("combo", [dict(prefix="beta/"), dict(prefix="alpha/", delimiter="/"),
                                   dict(marker=key_of(N_KEYS // 3), prefix="gamma/m0",
                                        max_keys=500)],
                         ids=lambda c: repr(c)[:70])
def test_list_objects_v1_matches_model(s3, listing_bucket, combo):
    args = dict(prefix="", delimiter="", marker="", max_keys=1000)
    args.update(combo)
    expected = s3model.list_entries(ALL_KEYS, prefix=args["prefix"],
                                    delimiter=args["delimiter"], start_after=args["marker"])
    got = s3model.fetch_v1_pages(s3, listing_bucket, **args,
                                 max_pages=len(expected) // args["max_keys"] + 3)
    s3model.compare_pages(got, expected, args["max_keys"], f"ListObjects {combo}")
