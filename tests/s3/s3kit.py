"""Helpers for Cairn's S3 compatibility suite (tests/s3).

Builds on tests/integration/cairn_harness.py (server processes, native client, CLI, log
secret scan) and adds what S3 clients need: credentials, a boto3 client factory, the
environment for command-line clients, raw SigV4-signed requests (botocore's signer) sent
over http.client, aws-chunked encoders, and content helpers. Imports of boto3/botocore
are lazy so the suite can still be collected (and skip cleanly) without them.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import hmac
import http.client
import os
import random
import re
import secrets
import shutil
import socket
import string
import subprocess
import sys
import time
import types
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

S3_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(S3_DIR.parent / "integration"))

import cairn_harness as h  # noqa: E402

REGION = "us-east-1"
KiB, MiB, GiB = h.KiB, h.MiB, h.GiB
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
S3_READY_TIMEOUT_S = 15.0
TOOL_TIMEOUT_S = 240.0


# ---------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Creds:
    access_key: str
    secret_key: str
    tenant: str

    def __repr__(self) -> str:  # never print the secret in a test report
        return f"S3Creds({self.access_key!r}, <secret>, tenant={self.tenant!r})"


def new_bootstrap_creds(tenant: str) -> S3Creds:
    """An AWS-shaped key pair (20-char access key, 40-char secret with '/' and '+')."""
    alphabet = string.ascii_uppercase + string.digits
    access = "AKCAIRN" + "".join(secrets.choice(alphabet) for _ in range(13))
    secret_alphabet = string.ascii_letters + string.digits + "/+"
    secret = "".join(secrets.choice(secret_alphabet) for _ in range(38)) + "/+"
    h.register_secret(secret, f"S3 secret of bootstrap key {access}")
    return S3Creds(access, secret, tenant)


_ACCESS_LINE = re.compile(r"^\s*access_key:\s*(\S+)\s*$", re.MULTILINE)
_SECRET_LINE = re.compile(r"^\s*secret_key:\s*(\S+)\s*$", re.MULTILINE)


def create_s3_key(data_dir: Path, tenant: str, *, scope: Optional[str] = None) -> S3Creds:
    """`cairn keys create --s3 --tenant T [--scope S] --data-dir D`, parsed from its two
    output lines."""
    args = ["--s3", "--tenant", tenant] + (["--scope", scope] if scope else [])
    r = h.run_cli(data_dir, ["keys", "create"], args, allow_secret_in_stdout=True)
    assert r.returncode == 0, h.cli_summary(r).replace(r.stdout, "<stdout hidden>")
    access, secret = _ACCESS_LINE.search(r.stdout), _SECRET_LINE.search(r.stdout)
    assert access and secret, ("`cairn keys create --s3` did not print 'access_key: ...' and "
                               f"'secret_key: ...' lines ({len(r.stdout)} bytes of stdout)")
    what = f"{scope} key" if scope else "key"
    h.register_secret(secret.group(1), f"S3 secret of {what} {access.group(1)}")
    assert secret.group(1) not in r.stderr
    return S3Creds(access.group(1), secret.group(1), tenant)


# ---------------------------------------------------------------------------------------
# Deployment: one server with S3 and two tenants' keys
# ---------------------------------------------------------------------------------------
def wait_for_tcp(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class S3Deployment:
    """A running `cairn serve` with the S3 listener, the bootstrap key pair of tenant
    `main` and a second tenant's pair (`other`) made with `cairn keys create --s3`."""

    def __init__(self, server: h.CairnServer, main: S3Creds, home: Path):
        self.server = server
        self.main = main
        self.other: Optional[S3Creds] = None
        self.home = home
        self.native = h.Client(server, server.admin_key)

    @property
    def endpoint(self) -> str:
        return self.server.s3_url

    @property
    def port(self) -> int:
        return self.server.s3_port

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def boto(self, creds: Optional[S3Creds] = None, **kwargs):
        return boto_client(self.endpoint, creds or self.main, **kwargs)

    def env(self, creds: Optional[S3Creds] = None) -> dict:
        return client_env(creds or self.main, self.home)

    def revive(self) -> None:
        """After the server died: stop() records the death (reported again at teardown),
        then start it again on the same data directory and S3 port."""
        self.server.stop()
        self.server.start()
        assert wait_for_tcp(self.server.s3_port, S3_READY_TIMEOUT_S), "S3 did not come back"

    # native view of an S3 object
    def native_get(self, bucket: str, key: str, tenant: Optional[str] = None, *,
                   method: str = "GET"):
        return self.native.get_by_key(bucket, tenant or self.main.tenant, key, method=method)

    def native_head(self, bucket: str, key: str, tenant: Optional[str] = None) -> Optional[dict]:
        """Headers of the native HEAD by key (lower-case names); None on 404."""
        r = self.native_get(bucket, key, tenant, method="HEAD")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, h.describe(r, "native HEAD by key")
        return {k.lower(): v for k, v in r.headers.items()}

    def recorded_sha256(self, bucket: str, key: str, tenant: Optional[str] = None) -> Optional[str]:
        """The SHA-256 the server recorded for the object (native HEAD X-Content-SHA256,
        cheap for large objects); None on 404."""
        headers = self.native_head(bucket, key, tenant)
        return None if headers is None else headers.get("x-content-sha256", "").lower()

    def native_sha256(self, bucket: str, key: str, tenant: Optional[str] = None) -> Optional[str]:
        """SHA-256 of the bytes the native API serves for (bucket, tenant, key); None on 404."""
        r = self.native_get(bucket, key, tenant)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, h.describe(r, "native GET by key")
        return hashlib.sha256(r.content).hexdigest()


def start_deployment(tmp_root: Path, *, main_tenant: str = "main",
                     other_tenant: str = "other", extra_args: Iterable[str] = (),
                     extra_env: Optional[dict] = None) -> S3Deployment:
    main = new_bootstrap_creds(main_tenant)
    # The S3 port is chosen here (not per start) so clients keep working across a restart.
    env = {"CAIRN_S3_ACCESS_KEY": main.access_key, "CAIRN_S3_SECRET_KEY": main.secret_key,
           "CAIRN_S3_TENANT": main.tenant, "CAIRN_S3_LISTEN": f"127.0.0.1:{h.free_port()}"}
    env.update(extra_env or {})
    server = h.CairnServer(tmp_root / "data", extra_args=extra_args, extra_env=env)
    home = tmp_root / "home"
    make_client_home(home)
    deployment = S3Deployment(server, main, home)
    server.start()
    try:
        assert server.s3_port, "the harness did not record the S3 port"
        if not wait_for_tcp(server.s3_port, S3_READY_TIMEOUT_S):
            raise AssertionError(
                f"cairn serve answers /health but nothing listens for S3 on {server.s3_url} "
                f"within {S3_READY_TIMEOUT_S:.0f} s (does this build serve S3?)\n"
                + server.current_log_tail())
        if other_tenant:
            deployment.other = create_s3_key(server.data_dir, other_tenant)
    except BaseException:
        server.stop()
        raise
    return deployment


# ---------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------
_AWS_ENV_TO_DROP = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CA_BUNDLE", "AWS_SESSION_TOKEN",
                    "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION",
                    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_USE_FIPS_ENDPOINT",
                    "AWS_USE_DUALSTACK_ENDPOINT", "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
                    "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION",
                    "AWS_SDK_LOAD_CONFIG", "NO_PROXY", "no_proxy", "http_proxy",
                    "https_proxy", "all_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
                    "RCLONE_CONFIG", "S3CMD_CONFIG")


def make_client_home(home: Path) -> None:
    """A HOME for client processes: an AWS config that pins region and path style, and
    nothing else (no user credentials, profiles or tool configs can leak in)."""
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    (home / ".aws" / "config").write_text(
        "[default]\nregion = us-east-1\noutput = json\ncli_pager =\n"
        "s3 =\n    addressing_style = path\n")
    (home / ".config").mkdir(exist_ok=True)
    (home / "tmp").mkdir(exist_ok=True)


def client_env(creds: S3Creds, home: Path, extra: Optional[dict] = None) -> dict:
    """Environment for a client process: harness base env (no CAIRN_*, no proxies), no
    inherited AWS settings, explicit credentials and region, a private HOME."""
    env = {k: v for k, v in h.base_env().items()
           if k not in _AWS_ENV_TO_DROP and not k.startswith("AWS_")
           and not k.startswith("RCLONE_")}
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"), "TMPDIR": str(home / "tmp"),
        "AWS_ACCESS_KEY_ID": creds.access_key, "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "", "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
        "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "1",  # no retries hide errors
        "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
    })
    env.update(extra or {})
    return env


def isolate_this_process(home: Path) -> dict:
    """os.environ changes so boto3 in the pytest process reads no user config; returns
    the previous values (restore with restore_environ)."""
    changes = {k: None for k in list(os.environ) if k in _AWS_ENV_TO_DROP}
    changes.update({"AWS_CONFIG_FILE": str(home / ".aws" / "config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
                    "AWS_EC2_METADATA_DISABLED": "true"})
    previous = {k: os.environ.get(k) for k in changes}
    for k, v in changes.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    return previous


def restore_environ(previous: dict) -> None:
    for k, v in previous.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def boto_client(endpoint: str, creds: S3Creds, *, addressing: str = "path",
                region: str = REGION, max_attempts: int = 1, read_timeout: float = 120.0,
                **config_kwargs):
    """A boto3 S3 client with explicit credentials, SigV4, path style and no retries (so
    errors surface as they are)."""
    import boto3
    import botocore.config

    config = botocore.config.Config(
        region_name=region, signature_version="s3v4",
        s3={"addressing_style": addressing},
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=5, read_timeout=read_timeout, max_pool_connections=32,
        **config_kwargs)
    session = boto3.session.Session(aws_access_key_id=creds.access_key,
                                    aws_secret_access_key=creds.secret_key,
                                    region_name=region)
    return session.client("s3", endpoint_url=endpoint, config=config)


def error_code(exc) -> str:
    """The S3 <Code> of a botocore ClientError (HEAD errors have none: the status)."""
    return exc.response.get("Error", {}).get("Code", "")


def http_status(exc) -> int:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


def expect_error(status: int, code: Optional[str], fn, **kwargs):
    """`fn(**kwargs)` fails with this HTTP status and S3 code (code None: a HEAD, which
    has no body, so only the status is checked); returns the ClientError."""
    import pytest
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as info:
        fn(**kwargs)
    e = info.value
    got = (http_status(e), error_code(e))
    want_code = code if code is not None else got[1]
    assert got == (status, want_code), \
        f"{fn.__name__}: expected {status} {code}, got {got[0]} {got[1]}: {e.response}"
    return e


def ok(response: dict, status: int = 200) -> dict:
    """A boto3 response, checked for its HTTP status."""
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response["ResponseMetadata"]
    return response


def assert_absent(client, bucket: str, key: str) -> None:
    expect_error(404, None, client.head_object, Bucket=bucket, Key=key)


def assert_no_bucket(client, name: str) -> None:
    expect_error(404, None, client.head_bucket, Bucket=name)


def drop_bucket(client, name: str, *, gone_statuses: Iterable[int] = (404,),
                max_pages: int = 50) -> None:
    """Removes the bucket's policy (a Deny may bind its owner), uploads and objects, then
    the bucket. A ClientError with a status in `gone_statuses` (the bucket is gone, or
    not the client's to touch) ends it quietly."""
    from botocore.exceptions import ClientError

    try:
        client.delete_bucket_policy(Bucket=name)
        for _ in range(max_pages):
            uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
            for u in uploads:
                client.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
            listing = client.list_objects_v2(Bucket=name)
            keys = [{"Key": o["Key"]} for o in listing.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
            if not uploads and not keys:
                break
        client.delete_bucket(Bucket=name)
    except ClientError as e:
        if http_status(e) not in gone_statuses:
            raise


def run_tool(cmd: list, env: dict, *, timeout: float = TOOL_TIMEOUT_S, cwd=None,
             input_bytes: Optional[bytes] = None) -> subprocess.CompletedProcess:
    """Runs a client command (bounded; killed on timeout) and decodes its output."""
    try:
        r = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True,
                           timeout=timeout,
                           stdin=subprocess.DEVNULL if input_bytes is None else None,
                           input=input_bytes)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"`{' '.join(map(str, cmd))}` did not finish within {timeout:.0f}"
                             f" s\nstdout: {(e.stdout or b'')[-2000:]!r}\n"
                             f"stderr: {(e.stderr or b'')[-2000:]!r}")
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def summary(r: subprocess.CompletedProcess) -> str:
    return (f"`{' '.join(map(str, r.args))}` exited {r.returncode}\n"
            f"--- stdout ---\n{r.stdout[-4000:]}\n--- stderr ---\n{r.stderr[-4000:]}")


def check_tool(cmd: list, env: dict, **kwargs) -> subprocess.CompletedProcess:
    r = run_tool(cmd, env, **kwargs)
    assert r.returncode == 0, summary(r)
    return r


# ---------------------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------------------
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def data(size: int, seed) -> bytes:
    return h.pseudo_random_bytes(size, seed)


def multipart_etag(part_md5_hexes: Iterable[str]) -> str:
    digests = [bytes.fromhex(x) for x in part_md5_hexes]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def etag_of_parts(blob: bytes, part_size: int) -> str:
    return multipart_etag(md5_hex(blob[i:i + part_size]) for i in range(0, len(blob), part_size))


def unquote_etag(etag: str) -> str:
    return etag.strip().strip('"')


def write_random_file(path: Path, size: int, seed, *, part_size: int = 8 * MiB) -> dict:
    """Writes `size` deterministic bytes (1 MiB blocks, bounded memory); returns sha256,
    md5 and the multipart ETag for `part_size` parts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    sha, md5 = hashlib.sha256(), hashlib.md5()
    part_md5s, part, in_part = [], hashlib.md5(), 0
    with open(path, "wb") as f:
        written = 0
        while written < size:
            n = min(MiB, size - written, part_size - in_part)
            block = rng.randbytes(n)
            f.write(block)
            sha.update(block)
            md5.update(block)
            part.update(block)
            in_part += n
            written += n
            if in_part == part_size:
                part_md5s.append(part.hexdigest())
                part, in_part = hashlib.md5(), 0
    if in_part or not part_md5s:
        part_md5s.append(part.hexdigest())
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest(), "size": size,
            "multipart_etag": multipart_etag(part_md5s)}


def sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            hasher.update(block)
    return hasher.hexdigest()


def sha256_stream(body, block: int = MiB) -> tuple[str, int]:
    """Hashes a botocore StreamingBody (or any .read()-able) without holding it."""
    hasher, total = hashlib.sha256(), 0
    while True:
        piece = body.read(block)
        if not piece:
            break
        hasher.update(piece)
        total += len(piece)
    return hasher.hexdigest(), total


def unique_bucket(prefix: str = "b") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def chunk_files(data_dir: Path, storage_class: str = "hot") -> dict:
    """{relative path: size} of every chunk file under <data-dir>/<class>/chunks."""
    root = Path(data_dir) / storage_class / "chunks"
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            try:
                out[str(p.relative_to(root))] = p.stat().st_size
            except FileNotFoundError:
                pass
    return out


# ---------------------------------------------------------------------------------------
# Raw SigV4 requests (botocore's signer, sent with http.client so every byte is ours)
# ---------------------------------------------------------------------------------------
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"


def _frozen_datetime_class(when: _dt.datetime):
    naive = when.astimezone(_dt.timezone.utc).replace(tzinfo=None)

    class Frozen(_dt.datetime):
        @classmethod
        def utcnow(cls):
            return cls(*naive.timetuple()[:6])

        @classmethod
        def now(cls, tz=None):
            value = cls(*naive.timetuple()[:6])
            return value.replace(tzinfo=_dt.timezone.utc).astimezone(tz) if tz else value

    return Frozen


@contextlib.contextmanager
def botocore_clock(when: Optional[_dt.datetime]):
    """Makes botocore's signers (and only them) see `when` as the current time: the pure
    Python ones (botocore.auth) and, when python3-awscrt is installed (awscli depends on
    it), the CRT ones botocore then uses for clients (botocore.crt.auth)."""
    if when is None:
        yield
        return
    import botocore.auth
    from unittest import mock

    shim = types.SimpleNamespace(datetime=_frozen_datetime_class(when),
                                 timezone=_dt.timezone, timedelta=_dt.timedelta)
    modules = [botocore.auth]
    try:
        import botocore.crt.auth
        modules.append(botocore.crt.auth)
    except ImportError:
        pass
    with contextlib.ExitStack() as stack:
        for module in modules:
            if hasattr(module, "datetime"):
                stack.enter_context(mock.patch.object(module, "datetime", shim))
        yield


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


@dataclass
class SignedRequest:
    method: str
    path: str  # raw path + "?" + raw query, as sent
    headers: dict
    body: bytes
    amz_date: str
    scope_date: str
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.scope_date}/{REGION}/s3/aws4_request"


def sign(creds: S3Creds, method: str, port: int, path: str, *, headers: Optional[dict] = None,
         body: bytes = b"", payload_hash: Optional[str] = None, host: Optional[str] = None,
         when: Optional[_dt.datetime] = None) -> SignedRequest:
    """Signs with botocore's S3SigV4Auth. `path` is the raw (already percent-encoded) path
    with an optional raw query. `payload_hash` replaces the body hash (UNSIGNED-PAYLOAD,
    STREAMING-...); `host` overrides the Host header (virtual-hosted style)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class Signer(S3SigV4Auth):
        def payload(self, request):
            return payload_hash if payload_hash is not None else super().payload(request)

    all_headers = dict(headers or {})
    all_headers["Host"] = host or f"127.0.0.1:{port}"
    request = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{path}",
                         headers=all_headers, data=body)
    with botocore_clock(when):
        Signer(Credentials(creds.access_key, creds.secret_key), "s3", REGION).add_auth(request)
    final = {k: v for k, v in request.headers.items()}
    signature = final["Authorization"].rsplit("Signature=", 1)[1].strip()
    amz_date = final["X-Amz-Date"]
    return SignedRequest(method, path, final, body, amz_date, amz_date[:8], signature)


@dataclass
class RawResponse:
    status: int
    headers: dict  # lower-case names
    body: bytes
    error: Optional[str] = None  # connection-level failure, if any

    @property
    def code(self) -> Optional[str]:
        return s3_error_code(self.body)

    def describe(self) -> str:
        return (f"status {self.status} headers {self.headers} body {self.body[:800]!r}"
                + (f" ({self.error})" if self.error else ""))


def send(port: int, method: str, path: str, headers: dict, body: bytes = b"", *,
         timeout: float = 30.0) -> RawResponse:
    """Sends one request exactly as given (headers verbatim, Host included) and reads the
    answer; a server that answers early and closes is handled."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    failure = None
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        names = {k.lower() for k in headers}
        for name, value in headers.items():
            conn.putheader(name, value)
        if "content-length" not in names and "transfer-encoding" not in names and \
                (body or method in ("PUT", "POST")):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            if body:
                conn.send(body)
        except (BrokenPipeError, ConnectionResetError) as e:
            failure = f"sending the body failed: {e!r}"
        try:
            response = conn.getresponse()
            payload = response.read()
            return RawResponse(response.status,
                               {k.lower(): v for k, v in response.getheaders()}, payload,
                               failure)
        except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError) as e:
            return RawResponse(0, {}, b"", f"{failure or ''} no response: {e!r}".strip())
    finally:
        conn.close()


def send_signed(req: SignedRequest, port: int, **kwargs) -> RawResponse:
    return send(port, req.method, req.path, req.headers, req.body, **kwargs)


def s3_error_code(body: bytes) -> Optional[str]:
    if not body or b"<Error" not in body:
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    node = root.find("Code")
    return node.text if node is not None else None


def xml_of(response: RawResponse) -> ET.Element:
    """The XML of a 200 response with S3's namespace stripped from the tags."""
    assert response.status == 200, response.describe()
    root = ET.fromstring(response.body)
    for node in root.iter():
        node.tag = node.tag.rsplit("}", 1)[-1]
    return root


def quote_key(key: str) -> str:
    """A key as an S3 path (SigV4 URI encoding: unreserved kept, '/' kept)."""
    return urllib.parse.quote(key, safe="/~")


# ---------------------------------------------------------------------------------------
# aws-chunked bodies (SigV4 streaming), written from the AWS S3 API reference
# ---------------------------------------------------------------------------------------
def signing_key(secret: str, date: str, region: str = REGION, service: str = "s3") -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def chunk_signature(key: bytes, amz_date: str, scope: str, previous: str, data: bytes) -> str:
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous,
                                EMPTY_SHA256, hashlib.sha256(data).hexdigest()])
    return _hmac_hex(key, string_to_sign)


def trailer_signature(key: bytes, amz_date: str, scope: str, previous: str,
                      trailer_text: str) -> str:
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous,
                                hashlib.sha256(trailer_text.encode()).hexdigest()])
    return _hmac_hex(key, string_to_sign)


def split_chunks(payload: bytes, chunk_size: int) -> list[bytes]:
    return [payload[i:i + chunk_size] for i in range(0, len(payload), chunk_size)]


def encode_signed_chunks(payload: bytes, *, key: bytes, amz_date: str, scope: str, seed: str,
                         chunk_size: int = 64 * KiB,
                         trailer: Optional[tuple[str, str]] = None) -> bytes:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: each chunk is
    hex(size);chunk-signature=sig CRLF data CRLF, signatures chained from the seed (the
    request's own signature), a signed 0-size final chunk, then (with a trailer) the
    trailing header line and x-amz-trailer-signature."""
    out, previous = [], seed
    for piece in split_chunks(payload, chunk_size) + [b""]:
        previous = chunk_signature(key, amz_date, scope, previous, piece)
        out.append(f"{len(piece):x};chunk-signature={previous}\r\n".encode())
        if piece:
            out.append(piece + b"\r\n")
    if trailer:
        line = f"{trailer[0]}:{trailer[1]}"
        out.append(line.encode() + b"\r\n")
        signature = trailer_signature(key, amz_date, scope, previous, line + "\n")
        out.append(f"x-amz-trailer-signature:{signature}\r\n".encode())
    out.append(b"\r\n")
    return b"".join(out)


def encode_unsigned_trailer(payload: bytes, trailer: tuple[str, str], *,
                            chunk_size: int = 64 * KiB) -> bytes:
    """STREAMING-UNSIGNED-PAYLOAD-TRAILER: hex(size) CRLF data CRLF ..., 0 CRLF, the
    trailing header line CRLF, CRLF."""
    out = []
    for piece in split_chunks(payload, chunk_size):
        out.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    out.append(b"0\r\n" + f"{trailer[0]}:{trailer[1]}\r\n".encode() + b"\r\n")
    return b"".join(out)


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def write_s3cmd_config(path: Path, deployment: S3Deployment, *, signature_v2: bool) -> Path:
    """An s3cmd configuration (mode 0600) for tenant `main` of the deployment, path-style
    over plain HTTP."""
    path.write_text("\n".join([
        "[default]",
        f"access_key = {deployment.main.access_key}",
        f"secret_key = {deployment.main.secret_key}",
        f"host_base = 127.0.0.1:{deployment.port}",
        f"host_bucket = 127.0.0.1:{deployment.port}",
        "bucket_location = us-east-1",
        "use_https = False",
        f"signature_v2 = {signature_v2}",
        "check_ssl_certificate = False",
        "guess_mime_type = False",
        "socket_timeout = 60",
        "",
    ]))
    os.chmod(path, 0o600)
    return path


def require_tool(path_or_name: str, package: str) -> str:
    """The executable (an absolute path is taken as is, a name is looked up in PATH), or
    skip the test: `package` is not installed."""
    import pytest

    if os.path.isabs(path_or_name):
        found = path_or_name if os.access(path_or_name, os.X_OK) else None
    else:
        found = shutil.which(path_or_name)
    if not found:
        pytest.skip(f"{path_or_name} not found: install {package}")
    return found
