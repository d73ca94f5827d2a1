"""Black-box harness for Cairn's integration tests.

Starts real `cairn serve` processes on free loopback ports with fresh data directories,
talks to them over HTTP (requests) or raw sockets, runs the `cairn` command line, makes
API keys and HS256 JWTs, and checks server logs for leaked secrets.

Every wait here is bounded in time; every process started is tracked and stopped (by
the fixtures, by the per-test watchdog, or at interpreter exit).
"""
from __future__ import annotations

import atexit
import base64
import ctypes
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Iterable, Iterator, Optional

import requests

os.environ.pop("AWS_CA_BUNDLE", None)

REPO_ROOT = Path(__file__).resolve().parents[2]
CAIRN_BIN = Path(os.environ.get("CAIRN_BIN") or REPO_ROOT / "build" / "cairn")

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
CHUNK_SIZE_BYTES = 4 * MiB

HEALTH_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
HTTP_TIMEOUT = (5.0, 60.0)  # (connect, read) seconds

KEY_PATTERN = re.compile(r"^cairn_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
UUID_PATTERN = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
RFC3339_UTC_PATTERN = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")
ERROR_CODES = {
    400: "InvalidArgument", 401: "Unauthenticated", 403: "PermissionDenied",
    404: "NotFound", 409: "Conflict", 411: "LengthRequired", 413: "PayloadTooLarge",
    405: "MethodNotAllowed", 416: "RangeNotSatisfiable", 429: "RateLimited",
    431: "HeaderFieldsTooLarge", 500: "Internal", 501: "NotImplemented", 503: "Unavailable",
}
OBJECT_FIELDS = ("id", "namespace", "tenant_id", "key", "content_hash", "size_bytes",
                 "storage_class", "content_type", "etag", "created_at")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "WARNING: ThreadSanitizer", "runtime error:")
GENERATED_ADMIN_KEY_LINE = re.compile(r"admin API key: *(cairn_[0-9a-f]{16}_[A-Za-z0-9_-]{43})")


# ---------------------------------------------------------------------------------------
# Secrets that must never show up in logs
# ---------------------------------------------------------------------------------------
_secrets_lock = threading.Lock()
_secrets: dict[str, str] = {}  # secret -> description that does not contain it


def register_secret(secret: str, description: str) -> None:
    if secret and len(secret) >= 16:
        with _secrets_lock:
            _secrets[secret] = description


def known_secrets() -> list[tuple[str, str]]:
    with _secrets_lock:
        return list(_secrets.items())


def find_leaked_secrets(text: str) -> list[str]:
    """Descriptions of every registered secret that occurs in `text`."""
    return [desc for secret, desc in known_secrets() if secret in text]


def generate_api_key() -> str:
    """A fresh well-formed key: cairn_<16 lowercase hex>_<43 base64url chars>."""
    key_id = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    key = f"cairn_{key_id}_{secret}"
    assert KEY_PATTERN.match(key), key
    register_secret(secret, f"secret of API key {key_id}")
    return key


def key_id_of(key: str) -> str:
    match = KEY_PATTERN.match(key)
    assert match, "not a well-formed Cairn API key"
    return match.group(1)


# ---------------------------------------------------------------------------------------
# JWT (HS256) with the standard library only
# ---------------------------------------------------------------------------------------
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(secret: Optional[str], claims: dict, *, alg: str = "HS256",
             header: Optional[dict] = None) -> str:
    """Encodes and signs a JWT. alg "none" gives an unsigned token (empty signature)."""
    head = {"alg": alg, "typ": "JWT"}
    if header:
        head.update(header)
    signing_input = (b64url(json.dumps(head, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    if alg == "none" or secret is None:
        return signing_input + "."
    digest = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    signature = b64url(digest)
    register_secret(signature, "signature of a test JWT")
    return signing_input + "." + signature


def generate_jwt_secret() -> str:
    secret = secrets.token_urlsafe(32)
    register_secret(secret, "JWT signing secret")
    return secret


# ---------------------------------------------------------------------------------------
# Deterministic content
# ---------------------------------------------------------------------------------------
def pseudo_random_bytes(size: int, seed) -> bytes:
    return random.Random(seed).randbytes(size)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_file(data_dir: Path, hex_digest: str, storage_class: str = "hot") -> Path:
    """Where the chunk named `hex_digest` lives (or would) under a storage root: one fan-out
    level when the root's layout file says "fanout=1", two in a root without one."""
    root = Path(data_dir) / storage_class
    layout = root / "layout"
    levels = 2
    if layout.exists():
        text = layout.read_text()
        assert text in ("fanout=1\n", "fanout=2\n"), f"unknown layout {text!r}"
        levels = int(text.strip().split("=")[1])
    path = root / "chunks"
    for level in range(levels):
        path = path / hex_digest[2 * level:2 * level + 2]
    return path / hex_digest


class PseudoRandomStream:
    """A read()-able body of `size` deterministic pseudo-random bytes, produced in blocks
    and never held in memory as a whole. `sha256` is complete once fully read; use
    `expected_sha256()` to compute it without reading the stream."""

    BLOCK_BYTES = 1 * MiB

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seed = seed
        self._rng = random.Random(seed)
        self._block = b""
        self._position = 0  # read offset into _block
        self._produced = 0
        self._hasher = hashlib.sha256()
        self.bytes_read = 0

    def __len__(self) -> int:  # lets requests send Content-Length instead of chunked
        return self.size

    @classmethod
    def blocks(cls, size: int, seed: int) -> Iterator[bytes]:
        rng = random.Random(seed)
        produced = 0
        while produced < size:
            n = min(cls.BLOCK_BYTES, size - produced)
            produced += n
            yield rng.randbytes(n)

    @classmethod
    def expected_sha256(cls, size: int, seed: int) -> str:
        hasher = hashlib.sha256()
        for block in cls.blocks(size, seed):
            hasher.update(block)
        return hasher.hexdigest()

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.bytes_read
        pieces = []
        while n > 0:
            if self._position == len(self._block):
                if self._produced == self.size:
                    break
                self._block = self._rng.randbytes(min(self.BLOCK_BYTES,
                                                      self.size - self._produced))
                self._produced += len(self._block)
                self._position = 0
            take = min(n, len(self._block) - self._position)
            pieces.append(self._block[self._position:self._position + take])
            self._position += take
            n -= take
        out = b"".join(pieces)
        self._hasher.update(out)
        self.bytes_read += len(out)
        return out

    @property
    def sha256(self) -> str:
        return self._hasher.hexdigest()


# ---------------------------------------------------------------------------------------
# Metadata engine: SQLite beside the data (default) or a fresh PostgreSQL database
# ---------------------------------------------------------------------------------------
# CAIRN_TEST_META=postgres runs every server the harness starts (unless a test passes its
# own meta_url) on its own new, empty database on the server CAIRN_TEST_POSTGRES_URL
# points at; the database is dropped when the test's servers are finished.
META_ENGINE = (os.environ.get("CAIRN_TEST_META") or "sqlite").strip().lower()
POSTGRES_URL = os.environ.get("CAIRN_TEST_POSTGRES_URL", "")
PSQL_TIMEOUT_S = 60.0
if META_ENGINE not in ("sqlite", "postgres"):
    raise RuntimeError(f"CAIRN_TEST_META must be sqlite or postgres, not {META_ENGINE!r}")
if META_ENGINE == "postgres" and not POSTGRES_URL:
    raise RuntimeError("CAIRN_TEST_META=postgres needs CAIRN_TEST_POSTGRES_URL")


if POSTGRES_URL:
    # The server must never print the database password (it shows the URL redacted).
    register_secret(urllib.parse.urlsplit(POSTGRES_URL).password or "", "PostgreSQL password")


def using_postgres() -> bool:
    return META_ENGINE == "postgres"


def postgres_url_with_database(url: str, database: str) -> str:
    """`url` with its path (the database name) replaced by `database`."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + database))


def psql(url: str, sql: str, *, timeout: float = PSQL_TIMEOUT_S) -> str:
    """Runs `sql` with psql on the database `url` names (bounded); returns unaligned
    tuples-only output. Raises AssertionError with psql's message on failure."""
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=base_env({"PGCONNECT_TIMEOUT": "10"}))
    if r.returncode != 0:
        raise AssertionError(f"psql failed ({r.returncode}) running {sql!r}: "
                             f"{r.stderr.decode('utf-8', 'replace')[-2000:]}")
    return r.stdout.decode("utf-8", "replace")


_databases_lock = threading.Lock()
_created_databases: set[str] = set()  # URLs of databases made here and not yet dropped


def create_postgres_database(prefix: str = "cairn_test") -> str:
    """A new empty database on the CAIRN_TEST_POSTGRES_URL server; returns its URL."""
    assert POSTGRES_URL, "CAIRN_TEST_POSTGRES_URL is not set"
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(6)}"
    psql(postgres_url_with_database(POSTGRES_URL, "postgres"), f'CREATE DATABASE "{name}"')
    url = postgres_url_with_database(POSTGRES_URL, name)
    with _databases_lock:
        _created_databases.add(url)
    return url


def drop_postgres_database(url: str) -> None:
    """Drops a database made by create_postgres_database (its connections terminated)."""
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    psql(postgres_url_with_database(url, "postgres"),
         f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with _databases_lock:
        _created_databases.discard(url)


def _drop_leftover_databases() -> None:
    with _databases_lock:
        leftovers = list(_created_databases)
    for url in leftovers:
        try:
            drop_postgres_database(url)
        except Exception:  # noqa: BLE001 - the server may be gone already; best effort
            pass


atexit.register(_drop_leftover_databases)

# data dir -> metadata URL of the servers on it, so that the command line (`cairn fsck`,
# `cairn keys`, ...) run on a data dir reaches the same database as its server.
_meta_urls_lock = threading.Lock()
_meta_urls: dict[Path, str] = {}


def register_meta_url(data_dir: Path, url: str) -> None:
    with _meta_urls_lock:
        _meta_urls[Path(data_dir).resolve()] = url


def meta_url_for(data_dir: Path) -> Optional[str]:
    with _meta_urls_lock:
        return _meta_urls.get(Path(data_dir).resolve())


# ---------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _LIBC = None


def _die_with_parent() -> None:
    """preexec_fn: the server gets SIGKILL if the test process dies (PR_SET_PDEATHSIG)."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)


def base_env(extra: Optional[dict] = None) -> dict:
    """The environment for anything we start: no inherited CAIRN_* settings, no
    AWS_CA_BUNDLE, no proxies."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CAIRN_") and k.upper() not in
           ("AWS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
    if extra:
        env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or netrc from the environment
    return session


_live_lock = threading.Lock()
_live_servers: set["CairnServer"] = set()


def kill_all_live_servers(reason: str) -> None:
    with _live_lock:
        servers = list(_live_servers)
    for server in servers:
        server.kill9(reason=reason)


atexit.register(kill_all_live_servers, "test process exiting")

_DEFAULT = object()


class CairnServer:
    """One `cairn serve` process (restartable) on one data directory."""

    _counter = 0

    def __init__(self, data_dir: Path, *, admin_key=_DEFAULT, jwt_secret=_DEFAULT,
                 gc_interval: Optional[float] = None, gc_grace: Optional[float] = None,
                 rate_limit: Optional[int] = None, extra_args: Iterable[str] = (),
                 extra_env: Optional[dict] = None, config_via_env: bool = False,
                 meta_url: Optional[str] = None, log_dir: Optional[Path] = None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = Path(log_dir) if log_dir else self.data_dir.parent / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # admin_key=None: let the server generate one (read it from admin.key afterwards).
        self.admin_key: Optional[str] = generate_api_key() if admin_key is _DEFAULT else admin_key
        self.jwt_secret = generate_jwt_secret() if jwt_secret is _DEFAULT else jwt_secret
        # Under CAIRN_TEST_META=postgres a server without an explicit meta_url gets the
        # database of another server on the same data dir, or a fresh one that it owns
        # (dropped by release_database()).
        self.owned_database: Optional[str] = None
        if meta_url is None and using_postgres():
            meta_url = meta_url_for(self.data_dir)
            if meta_url is None:
                meta_url = self.owned_database = create_postgres_database()
        if meta_url is not None and meta_url.startswith("postgres"):
            register_meta_url(self.data_dir, meta_url)
        self.meta_url = meta_url
        self.settings = {"gc-interval": gc_interval, "gc-grace": gc_grace,
                         "rate-limit": rate_limit, "meta": meta_url}
        self.extra_args = list(extra_args)
        self.extra_env = dict(extra_env or {})
        self.config_via_env = config_via_env
        self.port: Optional[int] = None
        self.s3_port: Optional[int] = None  # the S3 listener of the latest start
        self.proc: Optional[subprocess.Popen] = None
        self.problems: list[str] = []
        self.log_files: list[Path] = []
        self._scanned: set[Path] = set()
        self._killed_on_purpose = False
        self._stop_requested = False
        CairnServer._counter += 1
        self.name = f"cairn{CairnServer._counter}"
        self.starts = 0

    # -- addresses ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def s3_url(self) -> str:
        """The S3 endpoint (CAIRN_S3_LISTEN or --s3-listen of the latest start)."""
        assert self.s3_port is not None, "server not started"
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------------
    def command_and_env(self, port: int) -> tuple[list[str], dict]:
        env_extra = {"CAIRN_S3_LISTEN": f"127.0.0.1:{free_port()}"}  # never the shared 9000
        if self.admin_key is not None:
            env_extra["CAIRN_ADMIN_KEY"] = self.admin_key
        if self.jwt_secret is not None:
            env_extra["CAIRN_JWT_SECRET"] = self.jwt_secret
        settings = {"data-dir": str(self.data_dir), "listen": f"127.0.0.1:{port}"}
        settings.update({k: v for k, v in self.settings.items() if v is not None})
        cmd = [str(CAIRN_BIN), "serve"]
        for name, value in settings.items():
            if self.config_via_env:
                env_extra["CAIRN_" + name.upper().replace("-", "_")] = str(value)
            else:
                cmd += [f"--{name}", str(value)]
        cmd += self.extra_args
        env_extra.update(self.extra_env)
        s3_listen = env_extra.get("CAIRN_S3_LISTEN")
        for i, arg in enumerate(self.extra_args):  # a flag wins over the environment
            if arg == "--s3-listen" and i + 1 < len(self.extra_args):
                s3_listen = self.extra_args[i + 1]
            elif arg.startswith("--s3-listen="):
                s3_listen = arg.split("=", 1)[1]
        port_text = str(s3_listen or "").rpartition(":")[2]
        self.s3_port = int(port_text) if port_text.isdigit() else None
        return cmd, base_env(env_extra)

    def launch(self, port: int) -> None:
        """Starts the process without waiting for it to become healthy."""
        assert not self.alive(), "server already running"
        if not CAIRN_BIN.exists():
            raise AssertionError(f"cairn binary not found at {CAIRN_BIN} (set CAIRN_BIN)")
        self.port = port
        self.starts += 1
        stem = self.log_dir / f"{self.name}-start{self.starts}"
        out_path, err_path = Path(f"{stem}.stdout"), Path(f"{stem}.stderr")
        self.log_files += [out_path, err_path]
        cmd, env = self.command_and_env(port)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=env, cwd=str(self.data_dir.parent),
                                         preexec_fn=_die_with_parent)
        self._killed_on_purpose = False
        self._stop_requested = False
        with _live_lock:
            _live_servers.add(self)

    def start(self, port: Optional[int] = None, timeout: float = HEALTH_TIMEOUT_S) -> "CairnServer":
        """Starts the server and waits (bounded) until /health answers 200."""
        attempts = 1 if port else 3
        for attempt in range(attempts):
            self.launch(port or free_port())
            healthy, why = self.wait_healthy(timeout)
            if healthy:
                return self
            log = self.current_log_tail()
            self.kill9(reason="did not become healthy")
            lost_port_race = "in use" in log.lower() or "eaddrinuse" in log.lower()
            if not (lost_port_race and attempt + 1 < attempts):
                raise AssertionError(f"cairn serve did not become healthy: {why}\n{log}")
        raise AssertionError("unreachable")

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT_S) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        session = new_session()
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False, f"process exited with status {self.proc.returncode}"
            try:
                r = session.get(self.url + "/health", timeout=1.0)
                if r.status_code == 200:
                    return True, ""
                last = f"/health answered {r.status_code}"
            except requests.RequestException as e:
                last = type(e).__name__
            time.sleep(0.05)
        return False, f"no 200 from /health within {timeout:.0f} s ({last})"

    def terminate(self) -> None:
        """Sends SIGTERM without waiting."""
        assert self.alive()
        self._stop_requested = True
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> Optional[int]:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> Optional[int]:
        """SIGTERM, bounded wait, SIGKILL if needed. Records problems (unclean exit, leaked
        secrets, sanitizer reports) in self.problems. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            rc = self.wait_exit(timeout)
            if rc is None:
                self.proc.kill()
                self.proc.wait(10)
                self.problems.append(f"{self.name}: did not exit within {timeout:.0f} s of "
                                     "SIGTERM; killed with SIGKILL")
            elif rc != 0:
                self.problems.append(f"{self.name}: exited with status {rc} after SIGTERM "
                                     "(expected 0)")
        elif not self._killed_on_purpose and not self._stop_requested:
            self.problems.append(f"{self.name}: died during the test with status "
                                 f"{self.proc.returncode}\n{self.current_log_tail()}")
        self._forget()
        self.scan_logs()
        return self.proc.returncode

    def kill9(self, reason: str = "") -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._killed_on_purpose = True
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.problems.append(f"{self.name}: still alive 10 s after SIGKILL")
            if reason and reason != "crash test":
                self.problems.append(f"{self.name}: killed ({reason})")
        self._forget()

    def _forget(self) -> None:
        with _live_lock:
            _live_servers.discard(self)

    def release_database(self) -> None:
        """Drops the PostgreSQL database this server created (after it stopped)."""
        if self.owned_database is not None and not self.alive():
            drop_postgres_database(self.owned_database)
            self.owned_database = None

    # -- logs ---------------------------------------------------------------------------
    def log_text(self, path: Path) -> str:
        try:
            return path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def all_logs(self) -> str:
        return "".join(self.log_text(p) for p in self.log_files)

    def current_log_tail(self, chars: int = 4000) -> str:
        if not self.log_files:
            return ""
        text = self.log_text(self.log_files[-1])  # stderr of the latest start
        return f"--- {self.log_files[-1].name} (tail) ---\n{text[-chars:]}"

    def scan_logs(self) -> None:
        for path in self.log_files:
            if path in self._scanned:
                continue
            self._scanned.add(path)
            text = self.log_text(path)
            if self.admin_key is None:
                # The one place a secret may be printed: the generated bootstrap key.
                text = GENERATED_ADMIN_KEY_LINE.sub("admin API key: <generated>", text)
            for desc in find_leaked_secrets(text):
                self.problems.append(f"{self.name}: {desc} appears in {path.name}")
            for marker in SANITIZER_MARKERS:
                if marker in text:
                    at = text.index(marker)
                    self.problems.append(f"{self.name}: sanitizer report in {path.name}:\n"
                                         f"{text[max(0, at - 200):at + 2000]}")
                    break

    def read_vm_rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")


# ---------------------------------------------------------------------------------------
# HTTP client
# ---------------------------------------------------------------------------------------
def quote_key_header(key: str) -> str:
    """X-Key value: percent-encoded UTF-8 (every reserved byte, so '%' and '+' survive)."""
    return urllib.parse.quote(key, safe="")


def quote_key_path(key: str) -> str:
    """A key as the tail of a by-key URL: each '/'-separated segment percent-encoded, and
    the dot segments '.' and '..' encoded too so no client or proxy normalises them."""
    segments = []
    for segment in key.split("/"):
        if segment in (".", ".."):
            segments.append(segment.replace(".", "%2E"))
        else:
            segments.append(urllib.parse.quote(segment, safe=""))
    return "/".join(segments)


def query(**params) -> str:
    parts = [f"{k}={urllib.parse.quote(str(v), safe='')}" for k, v in params.items()
             if v is not None]
    return "?" + "&".join(parts) if parts else ""


class Client:
    """A small client for the native API. Not thread-safe: use clone() per thread."""

    def __init__(self, server: CairnServer, key: Optional[str], *, use_x_api_key: bool = False):
        self.server = server
        self.key = key
        self.use_x_api_key = use_x_api_key
        self.session = new_session()

    def clone(self, key=_DEFAULT) -> "Client":
        return Client(self.server, self.key if key is _DEFAULT else key,
                      use_x_api_key=self.use_x_api_key)

    @property
    def base(self) -> str:
        return self.server.url

    def auth_headers(self) -> dict:
        if not self.key:
            return {}
        if self.use_x_api_key:
            return {"X-API-Key": self.key}
        return {"Authorization": f"Bearer {self.key}"}

    def request(self, method: str, path: str, *, headers: Optional[dict] = None,
                timeout=HTTP_TIMEOUT, **kwargs) -> requests.Response:
        all_headers = self.auth_headers()
        all_headers.update(headers or {})
        return self.session.request(method, self.base + path, headers=all_headers,
                                    timeout=timeout, **kwargs)

    # -- objects -----------------------------------------------------------------------
    def upload(self, data, *, tenant: str, key: str, namespace: str = "default",
               storage_class: Optional[str] = None, content_type: Optional[str] = None,
               meta: Optional[dict] = None, sha256: Optional[str] = None,
               headers: Optional[dict] = None, raw_key_header: bool = False,
               timeout=HTTP_TIMEOUT) -> requests.Response:
        h = {"X-Tenant": tenant, "X-Namespace": namespace,
             "X-Key": key if raw_key_header else quote_key_header(key)}
        if storage_class is not None:
            h["X-Storage-Class"] = storage_class
        if content_type is not None:
            h["Content-Type"] = content_type
        if sha256 is not None:
            h["X-Content-SHA256"] = sha256
        for name, value in (meta or {}).items():
            h[f"X-Meta-{name}"] = value
        h.update(headers or {})
        return self.request("POST", "/v1/objects", headers=h, data=data, timeout=timeout)

    def put(self, data: bytes, **kwargs) -> dict:
        """upload() that must succeed; returns the object JSON."""
        r = self.upload(data, **kwargs)
        assert r.status_code == 201, describe(r, "upload")
        return r.json()

    def get(self, object_id: str, *, tenant: str, headers: Optional[dict] = None,
            method: str = "GET", stream: bool = False) -> requests.Response:
        h = {"X-Tenant": tenant}
        h.update(headers or {})
        return self.request(method, f"/v1/objects/{object_id}", headers=h, stream=stream)

    def by_key_path(self, namespace: str, tenant: str, key: str) -> str:
        return f"/v1/objects/by-key/{namespace}/{tenant}/{quote_key_path(key)}"

    def get_by_key(self, namespace: str, tenant: str, key: str, *,
                   headers: Optional[dict] = None, method: str = "GET") -> requests.Response:
        return self.request(method, self.by_key_path(namespace, tenant, key), headers=headers)

    def delete(self, object_id: str, *, tenant: str) -> requests.Response:
        return self.request("DELETE", f"/v1/objects/{object_id}", headers={"X-Tenant": tenant})

    def delete_by_key(self, namespace: str, tenant: str, key: str) -> requests.Response:
        return self.request("DELETE", self.by_key_path(namespace, tenant, key))

    def list(self, *, namespace: str, tenant: str, prefix: Optional[str] = None,
             limit: Optional[int] = None, cursor: Optional[str] = None) -> requests.Response:
        return self.request("GET", "/v1/objects" + query(namespace=namespace, tenant=tenant,
                                                         prefix=prefix, limit=limit,
                                                         cursor=cursor))

    def list_all(self, *, namespace: str, tenant: str, prefix: Optional[str] = None,
                 limit: Optional[int] = None, max_pages: int = 20000) -> list[dict]:
        """Every object, following next_cursor (bounded)."""
        objects: list[dict] = []
        cursor = None
        seen_cursors = set()
        for _ in range(max_pages):
            r = self.list(namespace=namespace, tenant=tenant, prefix=prefix, limit=limit,
                          cursor=cursor)
            assert r.status_code == 200, describe(r, "list")
            page = r.json()
            objects += page["objects"]
            cursor = page.get("next_cursor")
            if not page.get("truncated") or cursor is None:
                return objects
            assert cursor not in seen_cursors, f"list returned the cursor {cursor!r} twice"
            seen_cursors.add(cursor)
        raise AssertionError(f"listing did not finish within {max_pages} pages")

    def usage(self, tenant: str) -> requests.Response:
        return self.request("GET", "/v1/usage" + query(tenant=tenant))

    def usage_json(self, tenant: str) -> dict:
        r = self.usage(tenant)
        assert r.status_code == 200, describe(r, "usage")
        return r.json()

    def snapshot(self, tenant: str, namespaces: Iterable[str]) -> dict:
        """Everything a user can see of a tenant: listings and usage."""
        return {
            "lists": {ns: sorted((o["key"], o["id"], o["content_hash"], o["size_bytes"])
                                 for o in self.list_all(namespace=ns, tenant=tenant))
                      for ns in namespaces},
            "usage": self.usage_json(tenant),
        }

    def health_ok(self) -> bool:
        try:
            return self.session.get(self.base + "/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False


def describe(r: requests.Response, what: str = "request") -> str:
    content = getattr(r, "_content", False)
    body = content[:600] if isinstance(content, bytes) else b"<body not read>"
    return (f"{what}: {r.request.method} {r.request.url} -> {r.status_code} "
            f"{dict(r.headers)} {body!r}")


def assert_error(r: requests.Response, status: int, what: str = "request") -> dict:
    """The response has `status` and the documented JSON error body."""
    assert r.status_code == status, describe(r, what)
    assert r.headers.get("Content-Type", "").startswith("application/json"), describe(r, what)
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {describe(r, what)}")
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), describe(r, what)
    err = body["error"]
    assert isinstance(err.get("code"), str) and isinstance(err.get("message"), str), \
        describe(r, what)
    if status in ERROR_CODES:
        assert err["code"] == ERROR_CODES[status], describe(r, what)
    assert err["message"], f"empty error message: {describe(r, what)}"
    return err


def usage_row(usage: dict, namespace: str, storage_class: str) -> dict:
    """The usage row for (namespace, class); zeros when absent."""
    for row in usage.get("namespaces", []):
        if row["namespace"] == namespace and row["storage_class"] == storage_class:
            return row
    return {"namespace": namespace, "storage_class": storage_class, "objects": 0,
            "logical_bytes": 0, "physical_bytes": 0}


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------
def run_cli(data_dir: Path, command: list[str], args: Iterable[str] = (), *,
            timeout: float = 120.0, allow_secret_in_stdout: bool = False,
            env_extra: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Runs `cairn <command> --data-dir D <args>` (bounded). Fails if any known secret
    shows up in its output (except stdout when allow_secret_in_stdout)."""
    if not CAIRN_BIN.exists():
        raise AssertionError(f"cairn binary not found at {CAIRN_BIN} (set CAIRN_BIN)")
    cmd = [str(CAIRN_BIN), *command, "--data-dir", str(data_dir), *args]
    meta_url = meta_url_for(data_dir)
    if meta_url is not None and not any(str(a).startswith("--meta") for a in args):
        cmd += ["--meta", meta_url]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=base_env(env_extra), cwd=str(Path(data_dir).parent))
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    leaked = find_leaked_secrets(r.stderr)
    if not allow_secret_in_stdout:
        leaked += find_leaked_secrets(r.stdout)
    assert not leaked, f"`cairn {' '.join(command)}` printed secrets: {leaked}"
    return r


def cli_summary(r: subprocess.CompletedProcess) -> str:
    return (f"`{' '.join(map(str, r.args))}` exited {r.returncode}\n"
            f"stdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")


def create_key(data_dir: Path, tenants: Iterable[str], scope: str) -> str:
    args: list[str] = []
    for tenant in tenants:
        args += ["--tenant", tenant]
    args += ["--scope", scope]
    r = run_cli(data_dir, ["keys", "create"], args, allow_secret_in_stdout=True)
    assert r.returncode == 0, cli_summary(r)
    lines = [line.strip() for line in r.stdout.splitlines() if line.strip()]
    assert lines, cli_summary(r)
    key = lines[-1]
    match = KEY_PATTERN.match(key)
    assert match, f"last line of `cairn keys create` is not a key: {key[:30]!r}..."
    register_secret(match.group(2), f"secret of API key {match.group(1)}")
    assert match.group(2) not in r.stderr
    return key


def revoke_key(data_dir: Path, key: str) -> None:
    r = run_cli(data_dir, ["keys", "revoke"], [key_id_of(key)])
    assert r.returncode == 0, cli_summary(r)


def fsck_json(data_dir: Path, *extra: str) -> tuple[int, dict]:
    r = run_cli(data_dir, ["fsck"], ["--json", *extra], timeout=300)
    assert r.returncode in (0, 1), cli_summary(r)
    report = None
    text = r.stdout.strip()
    candidates = [text] + [line for line in reversed(text.splitlines()) if line.startswith("{")]
    for candidate in candidates:
        try:
            report = json.loads(candidate)
            break
        except ValueError:
            continue
    assert isinstance(report, dict), f"fsck --json did not print JSON:\n{cli_summary(r)}"
    for field in ("ok", "missing_chunks", "corrupt_chunks", "orphaned_chunks",
                  "wrong_ref_counts", "wrong_usage_counters", "stale_temp_files",
                  "objects_checked",
                  "chunks_checked"):
        assert field in report, f"fsck --json lacks {field!r}: {report}"
    assert report["ok"] == (r.returncode == 0), f"ok={report['ok']} but exit {r.returncode}"
    return r.returncode, report


def gc_now(data_dir: Path, grace_s: int = 0, *,
           allow_mass_delete: bool = True) -> subprocess.CompletedProcess:
    """One GC pass. By default past the per-pass deletion cap: a test that deleted most of
    its small store means GC to collect all of it now."""
    extra = ["--allow-mass-delete"] if allow_mass_delete else []
    r = run_cli(data_dir, ["gc"], ["--grace", str(grace_s), *extra], timeout=300)
    assert r.returncode == 0, cli_summary(r)
    return r


def chunk_bytes_on_disk(data_dir: Path, storage_class: str) -> int:
    """Total size of the regular files under the storage root <data-dir>/<class>."""
    root = Path(data_dir) / storage_class
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


def find_chunk_file(data_dir: Path, storage_class: str, digest_hex: str) -> Optional[Path]:
    """The file under <data-dir>/<class> whose name contains the chunk's hex digest."""
    root = Path(data_dir) / storage_class
    for dirpath, _, files in os.walk(root):
        for name in files:
            if digest_hex in name.lower():
                return Path(dirpath) / name
    return None


# ---------------------------------------------------------------------------------------
# Raw sockets
# ---------------------------------------------------------------------------------------
def raw_exchange(port: int, data: bytes, *, timeout: float = 5.0,
                 half_close: bool = True) -> bytes:
    """Sends raw bytes on a new connection and returns whatever comes back before the
    server closes it or `timeout` passes."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer (431, 400) and close before reading everything
        chunks = []
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                block = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not block:
                break
            chunks.append(block)
        return b"".join(chunks)


def parse_status(raw: bytes) -> Optional[int]:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(match.group(1)) if match else None


def read_http_response(sock: socket.socket, timeout: float) -> tuple[int, dict, bytes]:
    """Reads one HTTP/1.1 response with a Content-Length body (bounded)."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        block = sock.recv(65536)
        if not block:
            raise AssertionError(f"connection closed before a full response: {data[:300]!r}")
        data += block
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        block = sock.recv(65536)
        if not block:
            break
        body += block
    return status, headers, body


def wait_until(predicate, timeout: float, interval: float = 0.1):
    """Polls predicate() until it returns a truthy value or `timeout` passes; returns the
    last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


def raw_upload_head(credential: str, tenant: str, namespace: str, key: str,
                    extra: bytes = b"") -> bytes:
    """The start of a raw POST /v1/objects request: request line and headers, without the
    framing headers or the blank line (append `extra` and b"\\r\\n" yourself)."""
    return (b"POST /v1/objects HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
            f"Authorization: Bearer {credential}\r\nX-Tenant: {tenant}\r\n"
            f"X-Namespace: {namespace}\r\nX-Key: {quote_key_header(key)}\r\n".encode() + extra)


# ---------------------------------------------------------------------------------------
# Fixture helpers shared by tests/integration and tests/crash
# ---------------------------------------------------------------------------------------
def finish_servers(servers: Iterable[CairnServer]) -> list[str]:
    """Stops every server (SIGTERM, bounded), then drops the databases they created, and
    returns all recorded problems."""
    servers = list(servers)
    problems: list[str] = []
    for server in servers:
        try:
            server.stop()
        except Exception as e:  # noqa: BLE001 - keep stopping the others
            server.kill9()
            problems.append(f"{server.name}: stop failed: {e!r}")
        problems += server.problems
    for server in servers:
        try:
            server.release_database()
        except Exception as e:  # noqa: BLE001 - keep releasing the others
            problems.append(f"{server.name}: dropping its database failed: {e!r}")
    return problems


class Watchdog:
    """Kills every live server if a test runs past `limit_s`, so blocked requests fail
    fast instead of hanging the run."""

    def __init__(self, name: str, limit_s: float):
        self.name = name
        self.limit_s = limit_s
        self.fired = threading.Event()
        self._timer = threading.Timer(limit_s, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        self.fired.set()
        import sys
        sys.stderr.write(f"\n*** {self.name} exceeded {self.limit_s:.0f} s; killing its "
                         "servers\n")
        kill_all_live_servers(f"test exceeded its {self.limit_s:.0f} s limit")

    def __enter__(self) -> "Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
