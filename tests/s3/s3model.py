"""A Python model of S3 listing (ListObjectsV2 / ListObjects), the oracle for the listing
tests. Keys are ordered by their UTF-8 bytes, as S3 orders them.

Semantics modelled (AWS S3's):
- only keys that start with `prefix` and (V2) sort after `start_after` / (V1) `marker`;
- with a delimiter, every key whose rest (after the prefix) contains the delimiter rolls up
  into the common prefix prefix + rest[:first delimiter] + delimiter; a common prefix is one
  entry, placed where its first key would be, and counts once toward max-keys;
- pages are the first max-keys entries, then the next max-keys, ...; a continuation token
  (or V1 NextMarker, which is the last key or common prefix of the page) resumes after the
  page's last entry, so a common prefix never appears on two pages.
"""
from __future__ import annotations

import urllib.parse
from typing import Iterable, Optional


def utf8_key(key: str) -> bytes:
    return key.encode("utf-8")


def sort_keys(keys: Iterable[str]) -> list[str]:
    return sorted(set(keys), key=utf8_key)


def list_entries(sorted_keys: list[str], *, prefix: str = "", delimiter: str = "",
                 start_after: str = "") -> list[tuple[str, str]]:
    """All entries of a listing in order: ("key", k) or ("prefix", common prefix)."""
    entries: list[tuple[str, str]] = []
    seen_prefixes = set()
    after = utf8_key(start_after) if start_after else None
    for key in sorted_keys:
        if not key.startswith(prefix):
            continue
        if after is not None and utf8_key(key) <= after:
            continue
        if delimiter:
            rest = key[len(prefix):]
            at = rest.find(delimiter)
            if at >= 0:
                common = prefix + rest[:at + len(delimiter)]
                if common not in seen_prefixes:
                    seen_prefixes.add(common)
                    entries.append(("prefix", common))
                continue
        entries.append(("key", key))
    return entries


def pages(entries: list, max_keys: int) -> list[list]:
    assert max_keys >= 1
    return [entries[i:i + max_keys] for i in range(0, len(entries), max_keys)] or [[]]


def s3_url_decode(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    return urllib.parse.unquote_plus(text)


def check_url_encoded(encoded: Optional[str], original: Optional[str]) -> Optional[str]:
    """None if `encoded` is a valid encoding-type=url form of `original`, else why not.
    Encoders differ on a few characters ('*', '~'), so only what is unambiguous is
    checked: it decodes back exactly (so a literal '+' or '%' must be percent-encoded) and
    it is printable ASCII without spaces or control characters."""
    if original is None or encoded is None:
        return None if original == encoded else f"{encoded!r} vs {original!r}"
    if urllib.parse.unquote_plus(encoded) != original:
        return f"{encoded!r} decodes to {urllib.parse.unquote_plus(encoded)!r}, not {original!r}"
    if any(not (0x21 <= ord(c) <= 0x7e) for c in encoded):
        return f"{encoded!r} contains characters that are not printable ASCII"
    return None


# ---------------------------------------------------------------------------------------
# Driving a real listing and comparing it with the model
# ---------------------------------------------------------------------------------------
def fetch_v2_pages(client, bucket: str, *, prefix: str = "", delimiter: str = "",
                   start_after: str = "", max_keys: int = 1000, explicit_url: bool = False,
                   max_pages: int = 10_000) -> list[list[tuple[str, str]]]:
    """Every page of a ListObjectsV2 run (following continuation tokens, bounded), each as
    [("key", k) / ("prefix", p)...] in the order the server returned them (common
    prefixes are merged into key order by value). Checks the per-page invariants on the
    way. `explicit_url`: ask for EncodingType=url ourselves, so botocore leaves the values
    encoded and they are checked and decoded here; otherwise botocore adds it and decodes."""
    out: list[list[tuple[str, str]]] = []
    token = None
    seen_tokens = set()
    for _ in range(max_pages):
        params = {"Bucket": bucket, "MaxKeys": max_keys}
        if prefix:
            params["Prefix"] = prefix
        if delimiter:
            params["Delimiter"] = delimiter
        if start_after:
            params["StartAfter"] = start_after
        if explicit_url:
            params["EncodingType"] = "url"
        if token:
            params["ContinuationToken"] = token
        page = client.list_objects_v2(**params)
        where = f"ListObjectsV2 {params} (page {len(out) + 1})"
        contents = [o["Key"] for o in page.get("Contents", [])]
        prefixes = [c["Prefix"] for c in page.get("CommonPrefixes", [])]
        if explicit_url:
            assert page.get("EncodingType") == "url", f"{where}: no EncodingType=url echoed"
            for value in contents + prefixes:
                problem = check_url_encoded(value, s3_url_decode(value))
                assert problem is None, f"{where}: {problem}"
            for name, sent in (("Prefix", prefix), ("Delimiter", delimiter),
                               ("StartAfter", start_after)):
                if sent:
                    problem = check_url_encoded(page.get(name), sent)
                    assert problem is None, f"{where}: {name} echo: {problem}"
            contents = [s3_url_decode(v) for v in contents]
            prefixes = [s3_url_decode(v) for v in prefixes]
        else:
            for name, sent in (("Prefix", prefix), ("Delimiter", delimiter),
                               ("StartAfter", start_after)):
                if sent:
                    assert page.get(name) == sent, f"{where}: {name} echo {page.get(name)!r}"
        assert page.get("KeyCount") == len(contents) + len(prefixes), \
            f"{where}: KeyCount {page.get('KeyCount')} for {len(contents) + len(prefixes)}"
        assert page.get("MaxKeys") == max_keys, f"{where}: MaxKeys {page.get('MaxKeys')}"
        assert len(contents) + len(prefixes) <= max_keys, f"{where}: more than max-keys"
        assert contents == sorted(contents, key=utf8_key), f"{where}: keys out of order"
        assert prefixes == sorted(prefixes, key=utf8_key), f"{where}: prefixes out of order"
        entries = sorted([("key", k) for k in contents] + [("prefix", p) for p in prefixes],
                         key=lambda e: utf8_key(e[1]))
        out.append(entries)
        truncated = page.get("IsTruncated")
        token = page.get("NextContinuationToken")
        if not truncated:
            assert not token, f"{where}: NextContinuationToken on the last page"
            return out
        assert token, f"{where}: IsTruncated without NextContinuationToken"
        assert token not in seen_tokens, f"{where}: continuation token repeated"
        seen_tokens.add(token)
    raise AssertionError(f"listing did not end within {max_pages} pages")


def fetch_v1_pages(client, bucket: str, *, prefix: str = "", delimiter: str = "",
                   marker: str = "", max_keys: int = 1000,
                   max_pages: int = 10_000) -> list[list[tuple[str, str]]]:
    """ListObjects (V1) pages following NextMarker (or the last key when the server sends
    no NextMarker, which S3 only sends with a delimiter)."""
    out = []
    for _ in range(max_pages):
        params = {"Bucket": bucket, "MaxKeys": max_keys}
        for name, value in (("Prefix", prefix), ("Delimiter", delimiter), ("Marker", marker)):
            if value:
                params[name] = value
        page = client.list_objects(**params)
        where = f"ListObjects {params} (page {len(out) + 1})"
        contents = [o["Key"] for o in page.get("Contents", [])]
        prefixes = [c["Prefix"] for c in page.get("CommonPrefixes", [])]
        assert len(contents) + len(prefixes) <= max_keys, f"{where}: more than max-keys"
        entries = sorted([("key", k) for k in contents] + [("prefix", p) for p in prefixes],
                         key=lambda e: utf8_key(e[1]))
        out.append(entries)
        if not page.get("IsTruncated"):
            return out
        assert entries, f"{where}: truncated but empty"
        next_marker = page.get("NextMarker")
        if delimiter:
            assert next_marker, f"{where}: truncated with a delimiter but no NextMarker"
        marker = next_marker or entries[-1][1]
    raise AssertionError(f"listing did not end within {max_pages} pages")


def compare_pages(got: list[list], expected_entries: list, max_keys: int, what: str) -> None:
    """Pages must be the model's entries cut into pages of exactly max_keys."""
    flat = [e for page in got for e in page]
    if flat != expected_entries:
        flat_set, expected_set = set(flat), set(expected_entries)
        missing = [e for e in expected_entries if e not in flat_set][:10]
        extra = [e for e in flat if e not in expected_set][:10]
        duplicates = len(flat) - len(flat_set)
        raise AssertionError(
            f"{what}: {len(flat)} entries listed, {len(expected_entries)} expected; "
            f"{duplicates} duplicates; first missing {missing!r}; first unexpected {extra!r}; "
            f"first difference at index {_first_difference(flat, expected_entries)}")
    expected_pages = pages(expected_entries, max_keys)
    sizes = [len(p) for p in got]
    assert sizes == [len(p) for p in expected_pages], \
        f"{what}: page sizes {sizes[:20]} instead of full pages of {max_keys}"


def _first_difference(a: list, b: list) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))
