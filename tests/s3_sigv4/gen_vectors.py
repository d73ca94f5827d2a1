#!/usr/bin/python3
"""Cross-checks SigV4 vectors with botocore (Debian's python3-botocore).

Prints, for each case, the Authorization header (or the presigned query) botocore makes
at a frozen time. The printed values are committed as literal test data in
sigv4_test.cc; this script only documents how they were produced.
Usage: /usr/bin/python3 tests/s3_sigv4/gen_vectors.py
"""
import datetime
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

CREDS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


class FrozenDateTime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return cls(2013, 5, 24, 0, 0, 0)


def sign(method, url, headers, body=b"", presign=None):
    req = AWSRequest(method=method, url=url, headers=headers, data=body)
    with mock.patch.object(botocore.auth.datetime, "datetime", FrozenDateTime):
        if presign:
            botocore.auth.S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=presign).add_auth(req)
            return req.url
        botocore.auth.S3SigV4Auth(CREDS, "s3", "us-east-1").add_auth(req)
    return req.headers["Authorization"]


CASES = [
    ("GET", "https://examplebucket.s3.amazonaws.com/test.txt", {"Range": "bytes=0-9"}, b""),
    ("PUT", "https://examplebucket.s3.amazonaws.com/test%24file.text",
     {"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
     b"Welcome to Amazon S3."),
    ("GET", "https://examplebucket.s3.amazonaws.com/?lifecycle", {}, b""),
    ("GET", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", {}, b""),
    # Beyond the AWS examples (botocore only): the PUT above signs a Date header without
    # x-amz-date ("Fri, 24 May 2013 00:00:00 -0000"); encoded key characters; a query
    # needing encoding; a header value with inner whitespace runs.
    ("GET", "https://examplebucket.s3.amazonaws.com/dir%20one/a%2Bb~c%21%27%28%29.txt",
     {"x-amz-meta-note": "  two   spaces\tand tab  "}, b""),
    ("GET", "https://examplebucket.s3.amazonaws.com/?list-type=2&prefix=a%2Fb%20c&delimiter=%2F"
     "&start-after=%E2%82%AC", {}, b""),
]

for method, url, headers, body in CASES:
    print(method, url)
    print("  ", sign(method, url, dict(headers), body))

print("presign GET /test.txt 86400")
print("  ", sign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", {}, presign=86400))
