"""The access log: one line per request of either API on standard error, with the method,
what it addressed, the status, the body bytes each way, the duration, the request id the
response carries and the public id of the credential; never a secret, never a line a
client's key can forge; `--access-log off` (CAIRN_ACCESS_LOG=off) turns it off.
"""
from __future__ import annotations

import re
import socket
import subprocess
import urllib.parse

import pytest

import cairn_harness as h
from cairn_harness import KiB, MiB

LINE = re.compile(r"^cairn: (native|s3) request (.*)$")
FIELD = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)')
ELLIPSIS = "\u2026"
HOSTILE_KEY = 'evil\ncairn: native request id=FORGED method=DELETE status=204 "q" \\ \r end'


def unescape(value: str) -> str:
    """A field value as logged, back to the text it stands for."""
    if not value.startswith('"'):
        return value
    body, out, i = value[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
        elif body[i + 1] in "nrt":
            out.append({"n": "\n", "r": "\r", "t": "\t"}[body[i + 1]])
            i += 2
        elif body[i + 1] == "x":
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif body[i + 1] == "u":
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        else:
            out.append(body[i + 1])
            i += 2
    return "".join(out)


def parse_line(line: str) -> dict:
    """The fields of one access log line; fails unless the whole line is fields."""
    match = LINE.match(line)
    assert match, line
    rest = match.group(2)
    fields = {"api": match.group(1)}
    consumed = 0
    for field in FIELD.finditer(rest):
        assert rest[consumed:field.start()].strip() == "", f"stray text in {line!r}"
        fields[field.group(1)] = unescape(field.group(2))
        consumed = field.end()
    assert rest[consumed:].strip() == "", f"stray text in {line!r}"
    return fields


def access_lines(srv: h.CairnServer) -> list[str]:
    return [line for line in srv.all_logs().splitlines() if LINE.match(line)]


def line_for(srv: h.CairnServer, request_id: str) -> dict:
    """The fields of the line of request `request_id` (written just after the response,
    so waited for, bounded)."""
    def find():
        found = [line for line in access_lines(srv) if f" id={request_id} " in line]
        return found
    found = h.wait_until(find, timeout=5)
    assert len(found) == 1, f"{len(found or [])} access log lines for {request_id}"
    fields = parse_line(found[0])
    assert fields["id"] == request_id
    return fields


def test_native_requests_are_logged_with_method_status_and_bytes(server_factory, tenant):
    srv = server_factory()
    c = h.Client(srv, srv.admin_key)
    admin_id = h.key_id_of(srv.admin_key)
    data = h.pseudo_random_bytes(300 * KiB, "access-log")

    up = c.upload(data, tenant=tenant, namespace="docs", key="dir/notes 1.txt")
    assert up.status_code == 201, h.describe(up)
    line = line_for(srv, up.headers["X-Request-Id"])
    assert line["api"] == "native" and line["method"] == "POST"
    assert line["path"] == "/v1/objects" and line["ns"] == "docs" and line["tenant"] == tenant
    assert line["key"] == "dir/notes 1.txt"
    assert line["status"] == "201"
    assert int(line["in"]) == len(data) and int(line["out"]) == len(up.content)
    assert line["key_id"] == admin_id
    assert float(line["ms"]) >= 0 and line["peer"].startswith("127.0.0.1:")

    object_id = up.json()["id"]
    down = c.get(object_id, tenant=tenant)
    assert down.status_code == 200 and down.content == data
    line = line_for(srv, down.headers["X-Request-Id"])
    assert line["method"] == "GET" and line["path"] == f"/v1/objects/{object_id}"
    assert line["status"] == "200" and line["in"] == "0" and int(line["out"]) == len(data)
    assert line["key"] == "dir/notes 1.txt" and line["ns"] == "docs"

    part = c.get_by_key("docs", tenant, "dir/notes 1.txt", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    line = line_for(srv, part.headers["X-Request-Id"])
    assert line["status"] == "206" and line["out"] == "100"

    head = c.get(object_id, tenant=tenant, method="HEAD")
    line = line_for(srv, head.headers["X-Request-Id"])
    assert line["method"] == "HEAD" and line["status"] == "200" and line["out"] == "0"

    # A chunked body counts its bytes, not its framing.
    chunked = c.upload((data[i:i + 64 * KiB] for i in range(0, len(data), 64 * KiB)),
                       tenant=tenant, namespace="docs", key="chunked")
    assert chunked.status_code == 201, h.describe(chunked)
    assert int(line_for(srv, chunked.headers["X-Request-Id"])["in"]) == len(data)

    gone = c.delete(object_id, tenant=tenant)
    assert gone.status_code == 204
    line = line_for(srv, gone.headers["X-Request-Id"])
    assert line["method"] == "DELETE" and line["status"] == "204"
    assert line["key"] == "dir/notes 1.txt" and line["key_id"] == admin_id

    # Refused credentials: the status, and no key id (a wrong secret proves nothing).
    stranger = c.clone(key=h.generate_api_key())
    refused = stranger.get(object_id, tenant=tenant)
    assert refused.status_code == 401
    line = line_for(srv, refused.headers["X-Request-Id"])
    assert line["status"] == "401" and line["key_id"] == "-"

    # A JWT is named as such; X-API-Key works like Authorization.
    token = h.make_jwt(srv.jwt_secret, {"tenant": tenant, "scope": "read", "exp": 2**31 - 1})
    listed = c.clone(key=token).list(namespace="docs", tenant=tenant)
    assert listed.status_code == 200, h.describe(listed)
    line = line_for(srv, listed.headers["X-Request-Id"])
    assert line["key_id"] == "jwt" and line["path"] == "/v1/objects"
    via_header = h.Client(srv, srv.admin_key, use_x_api_key=True).usage(tenant)
    assert line_for(srv, via_header.headers["X-Request-Id"])["key_id"] == admin_id

    # Unauthenticated probes are logged too, one line each.
    health = c.session.get(srv.url + "/health", timeout=5)
    line = line_for(srv, health.headers["X-Request-Id"])
    assert line["path"] == "/health" and line["status"] == "200"

    log = srv.all_logs()
    assert srv.admin_key not in log and token not in log
    for text in log.splitlines():
        if " request id=" in text:
            parse_line(text)  # every line is well formed
    # The secret scan of the teardown covers the API key and JWT secrets besides.


@pytest.fixture
def s3_server(server_factory, tenant):
    boto3 = pytest.importorskip("boto3")
    import botocore.config
    access, secret = "AKIAACCESSLOG0000001", "accesslog-secret-" + "z" * 23
    h.register_secret(secret, "the S3 secret of test_access_log")
    srv = server_factory(extra_env={"CAIRN_S3_ACCESS_KEY": access, "CAIRN_S3_SECRET_KEY": secret,
                                    "CAIRN_S3_TENANT": tenant})
    config = botocore.config.Config(region_name="us-east-1", signature_version="s3v4",
                                    s3={"addressing_style": "path"},
                                    retries={"total_max_attempts": 1, "mode": "standard"})

    def client(secret_key=secret):
        return boto3.session.Session(aws_access_key_id=access, aws_secret_access_key=secret_key) \
            .client("s3", endpoint_url=srv.s3_url, config=config)
    return srv, access, client


def request_id_of(response: dict) -> str:
    return response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


def test_s3_requests_are_logged_with_operation_bucket_key_and_status(s3_server):
    import botocore.exceptions
    import requests
    srv, access, client = s3_server
    s3 = client()
    data = h.pseudo_random_bytes(200 * KiB, "s3-access-log")

    made = s3.create_bucket(Bucket="logged")
    line = line_for(srv, request_id_of(made))
    assert line["api"] == "s3" and line["op"] == "CreateBucket" and line["method"] == "PUT"
    assert line["bucket"] == "logged" and line["key"] == "-" and line["status"] == "200"
    assert line["key_id"] == access

    put = s3.put_object(Bucket="logged", Key="photos/a b.jpg", Body=data)
    line = line_for(srv, request_id_of(put))
    assert line["op"] == "PutObject" and line["key"] == "photos/a b.jpg"
    assert line["status"] == "200" and line["out"] == "0"
    # The HTTP body: the object, or (newer clients) the object in aws-chunked framing.
    assert len(data) <= int(line["in"]) <= len(data) + 16 * KiB

    got = s3.get_object(Bucket="logged", Key="photos/a b.jpg")
    assert got["Body"].read() == data
    line = line_for(srv, request_id_of(got))
    assert line["op"] == "GetObject" and line["method"] == "GET" and line["status"] == "200"
    assert line["in"] == "0" and int(line["out"]) == len(data)

    listed = s3.list_objects_v2(Bucket="logged")
    line = line_for(srv, request_id_of(listed))
    assert line["op"] == "ListObjectsV2" and line["bucket"] == "logged"
    assert int(line["out"]) > 0

    with pytest.raises(botocore.exceptions.ClientError) as missing:
        s3.head_object(Bucket="logged", Key="absent")
    line = line_for(srv, request_id_of(missing.value.response))
    assert line["op"] == "HeadObject" and line["status"] == "404" and line["key"] == "absent"

    # A request its secret does not sign: refused, and the key it named is logged.
    wrong = "accesslog-wrong-secret-" + "w" * 17
    h.register_secret(wrong, "a wrong S3 secret of test_access_log")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        client(wrong).get_object(Bucket="logged", Key="photos/a b.jpg")
    line = line_for(srv, request_id_of(refused.value.response))
    assert line["status"] == "403" and line["op"] == "GetObject" and line["key_id"] == access

    # A presigned URL: logged without its query, so without its signature or credential.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "logged",
                                                          "Key": "photos/a b.jpg"},
                                    ExpiresIn=300)
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Signature"][0]
    h.register_secret(signature, "the signature of a presigned URL")
    presigned = requests.get(url, timeout=10)
    assert presigned.status_code == 200 and presigned.content == data
    line = line_for(srv, presigned.headers["x-amz-request-id"])
    assert line["op"] == "GetObject" and line["key_id"] == access
    log = srv.all_logs()
    assert signature not in log and "X-Amz-" not in log and "x-amz-" not in log.lower()

    # A request without a signature, and one the parser refuses: a line each, with what
    # is known.
    anonymous = requests.get(srv.s3_url + "/logged/photos/a%20b.jpg", timeout=10)
    assert anonymous.status_code == 403
    line = line_for(srv, anonymous.headers["x-amz-request-id"])
    assert line["op"] == "GetObject" and line["key"] == "photos/a b.jpg"
    assert line["status"] == "403" and line["key_id"] == "-"
    with socket.create_connection(("127.0.0.1", srv.s3_port), timeout=10) as sock:
        sock.sendall(b"GET /logged/%zz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, _ = h.read_http_response(sock, timeout=10)
    assert status == 400
    line = line_for(srv, headers["x-amz-request-id"])
    assert line["status"] == "400" and line["op"] == "-" and line["bucket"] == "-"


def test_a_key_cannot_forge_a_line_and_long_keys_are_cut(s3_server, tenant):
    srv, access, client = s3_server
    c = h.Client(srv, srv.admin_key)
    up = c.upload(b"hostile", tenant=tenant, namespace="docs", key=HOSTILE_KEY)
    assert up.status_code == 201, h.describe(up)
    down = c.get_by_key("docs", tenant, HOSTILE_KEY)
    assert down.status_code == 200 and down.content == b"hostile"
    s3 = client()
    s3.create_bucket(Bucket="hostile")
    put = s3.put_object(Bucket="hostile", Key=HOSTILE_KEY, Body=b"hostile")
    long_key = "k" * 1000
    long_put = s3.put_object(Bucket="hostile", Key=long_key, Body=b"long")

    for request_id in (up.headers["X-Request-Id"], down.headers["X-Request-Id"],
                       request_id_of(put)):
        assert line_for(srv, request_id)["key"] == HOSTILE_KEY  # escaped, and back
    # Each line that mentions the forged text is the real line of a real request.
    log = srv.all_logs()
    assert "id=FORGED" in log  # inside a quoted key ...
    for text in log.splitlines():
        assert not text.startswith("cairn: native request id=FORGED"), text
        if "FORGED" in text:
            assert LINE.match(text), text
            assert parse_line(text)["key"] == HOSTILE_KEY  # ... never a field of its own
    assert "\r" not in log

    line = line_for(srv, request_id_of(long_put))
    assert line["key"] == "k" * 256 + ELLIPSIS
    assert max(len(text) for text in access_lines(srv)) < 2000


def test_access_log_off_writes_no_request_lines(server_factory, tenant):
    for off in ({"extra_args": ["--access-log", "off"]},
                {"extra_env": {"CAIRN_ACCESS_LOG": "off"}}):
        srv = server_factory(**off)
        c = h.Client(srv, srv.admin_key)
        obj = c.put(b"quiet", tenant=tenant, key="quiet")
        r = c.get(obj["id"], tenant=tenant)
        assert r.status_code == 200 and r.headers["X-Request-Id"]
        srv.stop()
        assert access_lines(srv) == [], off
        assert " request id=" not in srv.all_logs()

    # The default is on, and the flag takes on or off only.
    srv = server_factory(extra_env={"CAIRN_ACCESS_LOG": "on"})
    r = h.Client(srv, srv.admin_key).usage(tenant)
    line_for(srv, r.headers["X-Request-Id"])
    bad = subprocess.run([str(h.CAIRN_BIN), "serve", "--access-log", "maybe"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                         env=h.base_env())
    assert bad.returncode != 0 and b"--access-log" in bad.stderr, bad.stderr[-500:]
