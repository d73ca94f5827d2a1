"""Every file and directory Cairn creates is private (0600 / 0700) whatever the umask it
was started with: chunk files hold every tenant's data, the database holds S3 secrets."""
from __future__ import annotations

import os
import stat

import cairn_harness as h
from cairn_harness import MiB


def test_files_are_private_under_a_permissive_umask(server_factory, tenant):
    previous = os.umask(0o022)
    try:
        srv = server_factory(gc_interval=0)
        c = h.Client(srv, srv.admin_key)
        c.put(h.pseudo_random_bytes(5 * MiB, "private-big"), tenant=tenant, key="big")
        c.put(b"small and inline", tenant=tenant, key="small")
        r = h.run_cli(srv.data_dir, ["meta", "dump"], ["--out", str(srv.data_dir / "dump.jsonl")])
        assert r.returncode == 0, h.cli_summary(r)
    finally:
        os.umask(previous)
    open_to_others = []
    for dirpath, dirnames, filenames in os.walk(srv.data_dir):
        for name in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            mode = stat.S_IMODE(os.lstat(name).st_mode)
            if mode & 0o077:
                open_to_others.append(f"{oct(mode)} {os.path.relpath(name, srv.data_dir)}")
    assert not open_to_others, "\n".join(sorted(set(open_to_others)))
