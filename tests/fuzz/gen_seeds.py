#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the whole-path HTTP fuzz targets.

Usage: gen_seeds.py OUT_DIR   (writes OUT_DIR/fuzz_native_http/ and OUT_DIR/fuzz_s3_http/)

The input format is described in README.md beside this script. In short: the first byte
picks raw mode ('0': the rest is sent verbatim) or structured mode ('1': the rest is a list
of request specs separated by "\\n~~~\\n"). A spec is a flags byte, a parameter byte, then
"METHOD TARGET", header lines, an empty line and the body.
"""

import base64
import os
import sys

SEPARATOR = b"\n~~~\n"

# The harness's fixed native admin key (see kAdminKeyRandom in http_fuzz_harness.cc).
_RANDOM = b"fuzz-admin-key-random-bytes-for-cairn-ha"
ADMIN_KEY = ("cairn_" + _RANDOM[:8].hex() + "_" +
             base64.urlsafe_b64encode(_RANDOM[8:]).decode().rstrip("="))

# Framings (flags bits 2-4).
CL, CHUNKED, AWS_SIGNED, AWS_UNSIGNED_TRAILER, AWS_SIGNED_TRAILER, UNSIGNED, AWS_IN_CHUNKED, NONE = range(8)
# Credentials (flags bits 0-1).
ANON, AUTH, AUTH_ALT, AUTH_OTHER = range(4)


def flags(auth=AUTH, framing=CL, expect=False, twice=False):
    return bytes([auth | framing << 2 | (0x20 if expect else 0) | (0x80 if twice else 0)])


def param(chunk=2, transfer=2, extension=False, high=False):
    """chunk/transfer index the sizes 1, 7, 64, 500, 1024, 4096, 8192, 65536."""
    return bytes([chunk | transfer << 3 | (0x40 if extension else 0) | (0x80 if high else 0)])


def req(line, headers=(), body=b"", auth=AUTH, framing=CL, expect=False, twice=False, **kw):
    out = flags(auth, framing, expect, twice) + param(**kw) + line.encode() + b"\n"
    for header in headers:
        out += header.encode() + b"\n"
    out += b"\n"
    return out + (body if isinstance(body, bytes) else body.encode())


def structured(*requests):
    return b"1" + SEPARATOR.join(requests)


def raw(text):
    return b"0" + (text if isinstance(text, bytes) else text.encode())


BODY = b"hello, fuzzing world\n"
BIG = bytes((i * 7 + i // 251) % 256 for i in range(5000))  # 3 chunks of 2 KiB


def native_seeds():
    up = ["X-Namespace: ns", "X-Tenant: default", "X-Key: dir/a key.txt",
          "Content-Type: text/plain"]
    s = {}
    s["health"] = structured(req("GET /health", auth=ANON), req("GET /ready", auth=ANON),
                             req("GET /metrics", auth=ANON), req("HEAD /health", auth=ANON))
    s["upload-get-delete"] = structured(
        req("POST /v1/objects", up + ["X-Content-SHA256: @sha256", "X-Meta-Color: blue"], BODY),
        req("GET /v1/objects/@id", ["X-Tenant: default"]),
        req("HEAD /v1/objects/@id", ["X-Tenant: default"]),
        req("GET /v1/objects/@id", ["X-Tenant: default", "Range: bytes=2-5"]),
        req("GET /v1/objects/@id", ["X-Tenant: default", "If-None-Match: @etag"]),
        req("DELETE /v1/objects/@id", ["X-Tenant: default"]),
        req("GET /v1/objects/@id", ["X-Tenant: default"]))
    s["upload-big-ranges"] = structured(
        req("PUT /v1/objects", up + ["X-Storage-Class: cold", "X-Compute-MD5: true"], BIG),
        req("GET /v1/objects/@id", ["X-Tenant: default", "Range: bytes=2040-2060"]),
        req("GET /v1/objects/@id", ["X-Tenant: default", "Range: bytes=-100"]),
        req("GET /v1/objects/@id", ["X-Tenant: default", "Range: bytes=4990-"]),
        req("GET /v1/objects/@id", ["X-Tenant: default", "Range: bytes=9000-"]),
        req("GET /v1/objects/@id", ["X-Tenant: default", "Range: bytes=0-1,5-6"]))
    s["upload-chunked-trailer"] = structured(
        req("POST /v1/objects", up + ["~X-Checksum: abc"], BIG, framing=CHUNKED, transfer=4,
            extension=True),
        req("GET /v1/objects/by-key/ns/default/dir%2Fa%20key.txt"))
    s["upload-expect"] = structured(
        req("POST /v1/objects", up, BODY, expect=True),
        req("GET /v1/objects/by-key/ns/default/dir/a key.txt", twice=True))
    s["upload-bad-sha"] = structured(
        req("POST /v1/objects", up + ["X-Content-SHA256: sha256:" + "0" * 64], BODY),
        req("POST /v1/objects", up + ["X-Content-SHA256: nothex"], BODY),
        req("POST /v1/objects", up + ["X-Storage-Class: warm"], BODY),
        req("POST /v1/objects", ["X-Namespace: .hidden", "X-Tenant: default", "X-Key: k"], BODY))
    s["upload-short-body"] = structured(
        req("POST /v1/objects", up + ["Content-Length: 100"], BODY, framing=NONE))
    s["list-usage"] = structured(
        req("POST /v1/objects", ["X-Namespace: ls", "X-Tenant: default", "X-Key: a/1"], BODY),
        req("POST /v1/objects", ["X-Namespace: ls", "X-Tenant: default", "X-Key: a/2"], BIG),
        req("GET /v1/objects?namespace=ls&tenant=default&prefix=a%2F&limit=1"),
        req("GET /v1/objects?namespace=ls&tenant=default&limit=1&cursor=YS8x"),
        req("GET /v1/objects?namespace=ls&limit=x", ["X-Tenant: default"]),
        req("GET /v1/usage?tenant=default"),
        req("GET /v1/usage", ["X-Tenant: other"]))
    s["by-key-delete"] = structured(
        req("POST /v1/objects", ["X-Namespace: ns", "X-Tenant: other", "X-Key: k%00%ff"], BODY,
            auth=AUTH_OTHER),
        req("DELETE /v1/objects/by-key/ns/other/k%00%ff", auth=AUTH_OTHER),
        req("GET /v1/objects/by-key/ns/other/k%zz", auth=AUTH_OTHER, high=True),
        req("GET /v1/objects/by-key/ns", auth=AUTH_ALT))
    s["auth-variants"] = structured(
        req("GET /v1/usage?tenant=default", auth=ANON),
        req("GET /v1/usage?tenant=default", ["Authorization: Bearer cairn_0000_bad"], auth=ANON),
        req("GET /v1/usage?tenant=default", ["Authorization: Bearer a.b.c"], auth=ANON),
        req("GET /v1/usage?tenant=default", auth=AUTH_ALT),
        req("GET /v1/usage?tenant=default", auth=AUTH_OTHER, high=True),
        req("POST /v1/objects", ["X-Namespace: n", "X-Tenant: other", "X-Key: k"], BODY,
            auth=AUTH_OTHER, high=True))
    s["bad-routes"] = structured(
        req("PATCH /v1/objects"), req("GET /v1/objects/not-a-uuid"),
        req("GET /nowhere"), req("OPTIONS * HTTP/1.1"), req("GET /v1/objects/../etc HTTP/1.0"))
    key = "Authorization: Bearer " + ADMIN_KEY + "\r\n"
    s["raw-pipelined"] = raw(
        "POST /v1/objects HTTP/1.1\r\nHost: x\r\n" + key +
        "X-Namespace: raw\r\nX-Tenant: default\r\nX-Key: r\r\nContent-Length: 5\r\n\r\nhello"
        "GET /v1/objects/by-key/raw/default/r HTTP/1.1\r\nHost: x\r\n" + key + "\r\n"
        "GET /v1/objects?namespace=raw&tenant=default HTTP/1.1\r\nHost: x\r\n" + key +
        "Connection: close\r\n\r\n")
    s["raw-chunked-trailers"] = raw(
        "PUT /v1/objects HTTP/1.1\r\nHost: x\r\n" + key +
        "X-Namespace: raw\r\nX-Tenant: default\r\nX-Key: c\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;a=b\r\nhello\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n")
    s.update(raw_http_seeds(key))
    return s


def raw_http_seeds(auth_line=""):
    """Framing attacks that go to either port."""
    s = {}
    s["raw-garbage"] = raw(b"\x00\xff\r\n\r\n")
    s["raw-no-host-http10"] = raw("GET /health HTTP/1.0\r\n\r\n")
    s["raw-bare-lf"] = raw("GET /health HTTP/1.1\nHost: x\n\n")
    s["raw-obs-fold"] = raw("GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n")
    s["raw-cl-te"] = raw("POST /v1/objects HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    s["raw-te-gzip"] = raw("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")
    s["raw-two-cl"] = raw("PUT /a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                          "Content-Length: 2\r\n\r\nab")
    s["raw-bad-chunk"] = raw("PUT /a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "fffffffffffffffff\r\nx\r\n")
    s["raw-big-trailer"] = raw("PUT /a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "1\r\na\r\n0\r\nX-T: " + "t" * 3000 + "\r\n\r\n")
    s["raw-huge-header"] = raw("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + "b" * 17000 + "\r\n\r\n")
    s["raw-http2-preface"] = raw("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    s["raw-expect"] = raw("PUT /a/b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n" + auth_line +
                          "Content-Length: 3\r\n\r\nabc")
    return s


def s3_seeds():
    s = {}
    mk = req("PUT /fzb")
    put = req("PUT /fzb/obj.txt", ["Content-Type: text/plain", "x-amz-meta-color: blue",
                                  "Content-MD5: @md5"], BODY)
    s["list-buckets"] = structured(req("GET /"), req("GET /", auth=ANON), req("GET /", auth=AUTH_ALT))
    s["bucket-lifecycle"] = structured(
        mk, req("HEAD /fzb"), req("GET /fzb?location"), req("PUT /fzb2",
            body="<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint>"
                 "</CreateBucketConfiguration>"),
        req("DELETE /fzb2"), req("DELETE /nosuch"), req("PUT /Bad_Bucket"), req("HEAD /nosuch"))
    s["put-get-conditionals"] = structured(
        mk, put,
        req("GET /fzb/obj.txt", ["If-Match: @etag"]),
        req("GET /fzb/obj.txt", ["If-None-Match: @etag"]),
        req("GET /fzb/obj.txt", ["If-Modified-Since: Fri, 24 May 2013 00:00:00 GMT"]),
        req("GET /fzb/obj.txt", ["If-Unmodified-Since: Fri, 24 May 2013 00:00:00 GMT"]),
        req("HEAD /fzb/obj.txt", ["Range: bytes=1-3"]),
        req("GET /fzb/obj.txt?response-content-type=x%2Fy&partNumber=1", ["Range: bytes=-4"]))
    s["put-big-ranges"] = structured(
        mk, req("PUT /fzb/big", ["x-amz-checksum-sha256: @checksum"], BIG),
        req("GET /fzb/big", ["Range: bytes=2000-4100"]),
        req("GET /fzb/big", ["Range: bytes=6000-"]),
        req("DELETE /fzb/big"), req("DELETE /fzb/big"))
    s["aws-chunked-signed"] = structured(
        mk, req("PUT /fzb/ac", body=BIG, framing=AWS_SIGNED, chunk=4), req("GET /fzb/ac"))
    for i, alg in enumerate(["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]):
        s["aws-chunked-unsigned-trailer-" + alg] = structured(
            mk, req("PUT /fzb/t", ["x-amz-sdk-checksum-algorithm: " + alg.upper()], BODY,
                    framing=AWS_UNSIGNED_TRAILER, chunk=1, transfer=i))
    s["aws-chunked-signed-trailer"] = structured(
        mk, req("PUT /fzb/st", body=BIG, framing=AWS_SIGNED_TRAILER, chunk=5, transfer=1))
    s["aws-chunked-in-chunked"] = structured(
        mk, req("PUT /fzb/cc", body=BODY, framing=AWS_IN_CHUNKED, chunk=1, transfer=1))
    s["aws-chunked-empty"] = structured(mk, req("PUT /fzb/e", body=b"", framing=AWS_SIGNED))
    s["unsigned-payload"] = structured(
        mk, req("PUT /fzb/u", body=BODY, framing=UNSIGNED, expect=True))
    s["http-chunked"] = structured(
        mk, req("PUT /fzb/h", ["~x-amz-checksum-crc32: AAAAAA=="], BODY, framing=CHUNKED,
                transfer=1, extension=True))
    s["bad-payload-hash"] = structured(
        mk, req("PUT /fzb/x", ["x-amz-content-sha256: " + "0" * 64], BODY),
        req("PUT /fzb/x", ["Content-MD5: AAAAAAAAAAAAAAAAAAAAAA=="], BODY),
        req("PUT /fzb/x", ["x-amz-checksum-crc32c: AAAAAA=="], BODY))
    s["presigned"] = structured(
        mk, req("PUT /fzb/p", body=BODY, auth=AUTH_ALT, high=True),
        req("GET /fzb/p?response-content-disposition=attachment", auth=AUTH_ALT, chunk=7),
        req("GET /fzb/p?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a", auth=ANON))
    s["virtual-host"] = structured(
        mk, req("PUT /vh", ["Host: fzb.localhost"], BODY), req("GET /vh", ["Host: fzb.localhost"]),
        req("GET /?list-type=2", ["Host: fzb.localhost:9000"]))
    s["list-objects"] = structured(
        mk, req("PUT /fzb/a/1", body=BODY), req("PUT /fzb/a/2", body=BODY), req("PUT /fzb/b", body=BODY),
        req("GET /fzb?prefix=a%2F&delimiter=%2F&marker=a%2F1&max-keys=1"),
        req("GET /fzb?list-type=2&delimiter=%2F&max-keys=1&fetch-owner=true"),
        req("GET /fzb?list-type=2&start-after=a&continuation-token=YQ&encoding-type=url"),
        req("GET /fzb?list-type=2&max-keys=-1"))
    s["multipart-complete"] = structured(
        mk, req("POST /fzb/mp?uploads", ["x-amz-meta-m: 1", "Content-Type: a/b"]),
        req("PUT /fzb/mp?partNumber=1&uploadId=@upload", body=BIG),
        req("GET /fzb/mp?uploadId=@upload&max-parts=5"),
        req("GET /fzb?uploads&prefix=m"),
        req("POST /fzb/mp?uploadId=@upload", body="<CompleteMultipartUpload><Part><PartNumber>1"
            "</PartNumber><ETag>@e1</ETag></Part></CompleteMultipartUpload>"),
        req("GET /fzb/mp?partNumber=1", ["Range: bytes=0-10"]))
    s["multipart-two-parts-too-small"] = structured(
        mk, req("POST /fzb/mp2?uploads"),
        req("PUT /fzb/mp2?partNumber=1&uploadId=@upload", body=BODY),
        req("PUT /fzb/mp2?partNumber=2&uploadId=@upload", body=BODY, framing=AWS_SIGNED),
        req("POST /fzb/mp2?uploadId=@upload", body="<CompleteMultipartUpload><Part><PartNumber>1"
            "</PartNumber><ETag>@e1</ETag></Part><Part><PartNumber>2</PartNumber><ETag>@e2</ETag>"
            "</Part></CompleteMultipartUpload>"),
        req("DELETE /fzb/mp2?uploadId=@upload"), req("DELETE /fzb/mp2?uploadId=@upload"))
    s["upload-part-copy"] = structured(
        mk, put, req("POST /fzb/pc?uploads"),
        req("PUT /fzb/pc?partNumber=1&uploadId=@upload", ["x-amz-copy-source: /fzb/obj.txt",
                                                         "x-amz-copy-source-range: bytes=0-3"]),
        req("POST /fzb/pc?uploadId=@upload", body="<CompleteMultipartUpload><Part><PartNumber>1"
            "</PartNumber><ETag>@etag</ETag></Part></CompleteMultipartUpload>"))
    s["copy-object"] = structured(
        mk, put,
        req("PUT /fzb/copy", ["x-amz-copy-source: fzb/obj.txt", "x-amz-metadata-directive: REPLACE",
                             "x-amz-meta-new: 2", "x-amz-copy-source-if-match: @etag"]),
        req("PUT /fzb/copy2", ["x-amz-copy-source: /fzb/obj.txt?versionId=null",
                              "x-amz-tagging-directive: COPY"]),
        req("PUT /fzb/copy3", ["x-amz-copy-source: /nosuch/x"]),
        req("GET /fzb/copy"))
    s["delete-objects"] = structured(
        mk, put,
        req("POST /fzb?delete", ["Content-MD5: @md5"],
            "<Delete><Quiet>false</Quiet><Object><Key>obj.txt</Key></Object>"
            "<Object><Key>none</Key></Object></Delete>"),
        req("POST /fzb?delete", [], "<Delete><Object><Key>x</Key></Object></Delete>"),
        req("POST /fzb?delete", ["Content-MD5: @md5"], "<Delete><Object></Delete>"))
    s["tagging"] = structured(
        mk, req("PUT /fzb/tg", ["x-amz-tagging: a=1&b=2"], BODY),
        req("GET /fzb/tg?tagging"),
        req("PUT /fzb/tg?tagging", ["Content-MD5: @md5"],
            "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"),
        req("DELETE /fzb/tg?tagging"), req("GET /fzb/tg?tagging"))
    s["other-tenant-reader"] = structured(
        req("PUT /rob", auth=AUTH_OTHER), req("GET /", auth=AUTH_OTHER),
        req("GET /fzb/obj.txt", auth=AUTH_OTHER), req("PUT /fzb/obj.txt", body=BODY, auth=AUTH_OTHER))
    s["anonymous-and-bad-auth"] = structured(
        req("GET /fzb/obj.txt", auth=ANON),
        req("GET /fzb", ["Authorization: AWS AKID:sig"], auth=ANON),
        req("GET /fzb", ["Authorization: AWS4-HMAC-SHA256 Credential=FUZZACCESSKEY0000001/20130524/"
                        "us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + "0" * 64],
            auth=ANON),
        req("GET /fzb", ["x-amz-date: 20000101T000000Z"]))
    s["keep-alive"] = structured(mk, put, req("GET /fzb/obj.txt", twice=True),
                                 req("HEAD /fzb/obj.txt", twice=True))
    host = "Host: 127.0.0.1\r\n"
    s["raw-pipelined-anonymous"] = raw("GET / HTTP/1.1\r\n" + host + "\r\nPUT /b/k HTTP/1.1\r\n" +
                                       host + "Content-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\n" +
                                       host + "\r\n")
    s.update(raw_http_seeds())
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    for target, seeds in (("fuzz_native_http", native_seeds()), ("fuzz_s3_http", s3_seeds())):
        directory = os.path.join(out, target)
        os.makedirs(directory, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(directory, "seed-" + name), "wb") as f:
                f.write(data)
        print(f"{directory}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
