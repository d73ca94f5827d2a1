"""Fixtures of the console's browser tests: one `cairn serve` with its console listener
for the whole run (every scenario uses its own tenants and buckets), and a signed-in
client of the console's JSON API to set up what a scenario needs."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "integration"))

import cairn_harness as h  # noqa: E402

os.environ.pop("AWS_CA_BUNDLE", None)


class Console:
    """The console's JSON API, signed in with a credential (cookie and CSRF token)."""

    def __init__(self, url: str, credentials: dict):
        self.url = url
        self.http = h.new_session()
        r = self.http.post(url + "/api/session", json=credentials, timeout=h.HTTP_TIMEOUT)
        assert r.status_code == 200, h.describe(r, "console sign-in")
        self.session = r.json()

    def call(self, method: str, path: str, body=None, *, data=None, headers=None,
             expect=(200, 201, 204)):
        all_headers = {"X-CSRF-Token": self.session["csrf_token"]}
        all_headers.update(headers or {})
        r = self.http.request(method, self.url + path, json=body, data=data,
                              headers=all_headers, timeout=h.HTTP_TIMEOUT)
        assert r.status_code in expect, h.describe(r, f"{method} {path}")
        return r.json() if r.content else None

    def bucket(self, tenant: str, name: str) -> None:
        self.call("POST", "/api/buckets", {"tenant": tenant, "name": name})

    def upload(self, tenant: str, bucket: str, key: str, data: bytes,
               content_type: str = "application/octet-stream") -> dict:
        return self.call("PUT", "/api/upload" + h.query(tenant=tenant, bucket=bucket, key=key),
                         data=data, headers={"Content-Type": content_type})

    def key(self, kind: str, tenants: list[str], scope: str) -> dict:
        made = self.call("POST", "/api/keys", {"kind": kind, "tenants": tenants, "scope": scope,
                                               "description": "browser test"})
        h.register_secret(made["secret"], f"secret of the {kind} key {made['id']}")
        return made


class Server:
    def __init__(self, srv: h.CairnServer, console_port: int):
        self.srv = srv
        self.console_url = f"http://127.0.0.1:{console_port}"
        self.admin_key = srv.admin_key
        self.admin = Console(self.console_url, {"api_key": srv.admin_key})


@pytest.fixture(scope="session")
def cairn(tmp_path_factory):
    node_modules = HERE / "node_modules" / "playwright-core"
    assert node_modules.is_dir(), (
        "playwright-core is not installed: run `npm ci --no-audit --no-fund` in tests/console_browser")
    port = h.free_port()
    srv = h.CairnServer(tmp_path_factory.mktemp("console") / "data",
                        extra_args=["--console-listen", f"127.0.0.1:{port}"])
    srv.start()
    try:
        yield Server(srv, port)
    finally:
        problems = h.finish_servers([srv])
        if problems:
            pytest.fail("server problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    path = Path(os.environ.get("CAIRN_SCREENSHOTS") or HERE / "screenshots").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def parse_result(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {}
