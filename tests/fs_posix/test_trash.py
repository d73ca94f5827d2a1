"""The trash: deleted and replaced files stay in /.trash for the volume's trash days, are
listed and restored by `cairn fs trash`, and are gone for good after a purge."""
from __future__ import annotations

import os
import subprocess

from conftest import is_mounted, run


def trash_list(volume):
    out = run("fs", "trash", "list", "--data-dir", volume.data, volume.meta_url).stdout
    lines = out.strip().splitlines()
    assert lines[0].startswith("HOUR"), out
    entries = []
    for line in lines[1:-1]:
        hour, _deleted, size, entry = line.split(maxsplit=3)
        entries.append((hour, entry.strip("'\""), int(size)))
    return entries, lines[-1]


def test_deleted_and_replaced_files_wait_in_the_trash_until_restored_or_purged(volume, tmp_path):
    mnt = volume.mount(tmp_path / "mnt")
    os.mkdir(mnt / "docs")
    report = os.urandom(300_000)
    (mnt / "docs" / "report").write_bytes(report)
    (mnt / "docs" / "notes").write_bytes(b"version 1")
    (mnt / "docs" / "notes.new").write_bytes(b"version 2")
    os.unlink(mnt / "docs" / "report")
    os.rename(mnt / "docs" / "notes.new", mnt / "docs" / "notes")  # replaces version 1
    assert sorted(os.listdir(mnt / "docs")) == ["notes"]

    # Root sees them in the trash (hour directories, parent-ino-name entries).
    hours = os.listdir(mnt / ".trash")
    assert len(hours) == 1
    names = sorted(os.listdir(mnt / ".trash" / hours[0]), key=lambda n: n.rsplit("-", 1)[1])
    assert len(names) == 2 and names[0].endswith("-notes") and names[1].endswith("-report")
    trashed = mnt / ".trash" / hours[0] / names[1]
    assert trashed.read_bytes() == report
    assert os.stat(trashed).st_nlink == 0  # deleted, as far as programs can tell
    assert oct(os.stat(mnt / ".trash").st_mode & 0o777) == "0o700"
    # Others cannot look in; nobody can put anything there.
    denied = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "ls", str(mnt / ".trash")], capture_output=True, text=True)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    for action in (lambda: (mnt / ".trash" / "x").write_bytes(b""),
                   lambda: os.rename(mnt / "docs" / "notes", mnt / ".trash" / hours[0] / "x"),
                   lambda: os.rmdir(mnt / ".trash")):
        try:
            action()
            raise AssertionError("the trash took a change")
        except PermissionError:
            pass

    entries, total = trash_list(volume)
    assert sorted((e[0], e[1]) for e in entries) == sorted((hours[0], n) for n in names)
    assert dict((e[1], e[2]) for e in entries)[names[1]] == len(report)
    assert total == f"2 entries, {len(report) + 9} bytes"

    # Restore puts the file back under its name; a taken name is refused.
    restored = run("fs", "trash", "restore", "--data-dir", volume.data, volume.meta_url,
                   f"{hours[0]}/{names[1]}")
    assert "restored" in restored.stdout
    assert (mnt / "docs" / "report").read_bytes() == report
    assert os.stat(mnt / "docs" / "report").st_nlink == 1
    taken = run("fs", "trash", "restore", "--data-dir", volume.data, volume.meta_url,
                f"{hours[0]}/{names[0]}", check=False)
    assert taken.returncode == 1 and "exists" in taken.stderr
    elsewhere = run("fs", "trash", "restore", "--data-dir", volume.data, volume.meta_url,
                    f"{hours[0]}/{names[0]}", "--to", "/")
    assert "restored" in elsewhere.stdout
    assert (mnt / "notes").read_bytes() == b"version 1"
    assert (mnt / "docs" / "notes").read_bytes() == b"version 2"

    # Hours younger than the trash days stay; --all empties it and the files are gone.
    os.unlink(mnt / "docs" / "report")
    kept = run("fs", "trash", "purge", "--data-dir", volume.data, volume.meta_url)
    assert "purged 0 entries" in kept.stdout
    purged = run("fs", "trash", "purge", "--data-dir", volume.data, volume.meta_url, "--all")
    assert "purged 1 entries" in purged.stdout
    assert trash_list(volume)[1] == "0 entries, 0 bytes"
    assert os.listdir(mnt / ".trash") == []
    # Unlinking inside the trash deletes for good.
    os.unlink(mnt / "notes")
    hour = os.listdir(mnt / ".trash")[0]
    for name in os.listdir(mnt / ".trash" / hour):
        os.unlink(mnt / ".trash" / hour / name)
    assert trash_list(volume)[1] == "0 entries, 0 bytes"
    volume.umount(mnt)
    assert volume.fsck().returncode == 0


def test_files_overwritten_by_cp_or_a_redirect_leave_the_version_before_in_the_trash(
        volume, tmp_path):
    mnt = volume.mount(tmp_path / "mnt")
    os.mkdir(mnt / "etc")
    conf = mnt / "etc" / "app.conf"
    first = os.urandom(5 * 1024 * 1024 + 17)  # two blocks
    conf.write_bytes(first)
    second = tmp_path / "second"
    second.write_bytes(b"second version\n")
    subprocess.run(["cp", str(second), str(conf)], check=True)  # open(O_TRUNC) and write
    subprocess.run(["sh", "-c", f"echo third > '{conf}'"], check=True)
    os.truncate(conf, 3)  # truncate(2) by path: "thi"
    assert conf.read_bytes() == b"thi"

    entries, total = trash_list(volume)
    assert [e[1].split("-", 2)[2] for e in entries] == ["app.conf"] * 3, entries
    by_size = {e[2]: e for e in entries}
    assert sorted(by_size) == sorted([len(first), len(b"second version\n"), len(b"third\n")])
    assert total == f"3 entries, {len(first) + 15 + 6} bytes"
    # Root reads each version where the trash keeps it.
    hour, name, _ = by_size[len(first)]
    assert (mnt / ".trash" / hour / name).read_bytes() == first

    # The original name is taken by the file itself: restore the version elsewhere.
    taken = run("fs", "trash", "restore", "--data-dir", volume.data, volume.meta_url,
                f"{hour}/{name}", check=False)
    assert taken.returncode == 1 and "exists" in taken.stderr
    run("fs", "trash", "restore", "--data-dir", volume.data, volume.meta_url, f"{hour}/{name}",
        "--to", "/")
    assert (mnt / "app.conf").read_bytes() == first
    assert conf.read_bytes() == b"thi"

    # Writing in place (no cut) keeps nothing; neither does a growing truncate.
    with open(conf, "r+b") as f:
        f.write(b"T")
    os.truncate(conf, 10)
    assert len(trash_list(volume)[0]) == 2
    volume.umount(mnt)
    assert volume.fsck().returncode == 0


def test_listings_the_mounts_own_deletes_change_are_never_served_stale(volume, tmp_path):
    # The kernel keeps directory listings (cache_readdir), but the trash's and the root's
    # change behind its back when this mount files a deleted inode: they are not kept.
    mnt = volume.mount(tmp_path / "mnt")
    os.mkdir(mnt / "d")
    for name in ("a", "b", "c"):
        (mnt / "d" / name).write_bytes(name.encode())
    for _ in range(2):  # the second listing comes from the kernel's cache where it keeps one
        assert sorted(os.listdir(mnt)) == ["d"]
        assert sorted(os.listdir(mnt / "d")) == ["a", "b", "c"]
    os.unlink(mnt / "d" / "a")
    assert sorted(os.listdir(mnt)) == [".trash", "d"]  # the first delete made it
    assert sorted(os.listdir(mnt / "d")) == ["b", "c"]
    [hour] = os.listdir(mnt / ".trash")
    for _ in range(2):
        assert [n.rsplit("-", 1)[1] for n in os.listdir(mnt / ".trash" / hour)] == ["a"]
    os.unlink(mnt / "d" / "b")
    assert sorted(n.rsplit("-", 1)[1] for n in os.listdir(mnt / ".trash" / hour)) == ["a", "b"]
    os.rename(mnt / ".trash" / hour / os.listdir(mnt / ".trash" / hour)[0], mnt / "d" / "back")
    assert len(os.listdir(mnt / ".trash" / hour)) == 1
    assert "back" in os.listdir(mnt / "d")


def test_a_volume_without_trash_deletes_at_once(tmp_path):
    from conftest import Volume
    vol = Volume(tmp_path)
    vol.format("--trash-days", "0")
    try:
        mnt = vol.mount(tmp_path / "mnt")
        (mnt / "f").write_bytes(b"x")
        os.unlink(mnt / "f")
        assert not os.path.exists(mnt / ".trash")
        assert trash_list(vol)[1] == "0 entries, 0 bytes"
    finally:
        vol.close()


def test_mount_trash_days_sets_the_volume_for_every_mount(volume, tmp_path):
    """`cairn mount --trash-days N` (as in a JuiceFS-style option list) sets the volume's
    value: a mount started without the option follows it, a read-only mount may not change
    it, and a value out of range is refused before anything is mounted."""
    first = volume.mount(tmp_path / "a", "--trash-days", "0")
    log = (volume.base / "mount-a.log").read_text()
    assert "now keeps deleted files in .trash 0 days (was 7)" in log, log
    other = volume.mount(tmp_path / "b")
    (first / "f").write_bytes(b"x")
    os.unlink(other / "f")  # the other mount deletes at once too
    assert trash_list(volume)[1] == "0 entries, 0 bytes"

    (tmp_path / "ro").mkdir()
    (tmp_path / "bad").mkdir()
    refused = run("mount", "--data-dir", volume.data, volume.meta_url, tmp_path / "ro", "-d",
                  "--read-only", "--trash-days", "5", check=False, timeout=60)
    assert refused.returncode != 0 and "read-only mount" in refused.stderr, refused.stderr
    for bad in ("-1", "3651", "seven"):
        result = run("mount", "--data-dir", volume.data, volume.meta_url, tmp_path / "bad",
                     "-d", "--trash-days", bad, check=False, timeout=60)
        assert result.returncode != 0 and "--trash-days" in result.stderr, result.stderr
        assert not is_mounted(tmp_path / "bad")

    # Back on: the next delete, through either mount, goes to the trash.
    volume.umount(first)
    volume.mount(tmp_path / "a", "--trash-days", "2")
    (other / "g").write_bytes(b"kept")
    os.unlink(other / "g")
    entries, total = trash_list(volume)
    assert [e[1].rsplit("-", 1)[1] for e in entries] == ["g"] and total == "1 entries, 4 bytes"
    # A read-only mount may name the value the volume has: nothing to change.
    volume.umount(volume.mount(tmp_path / "c", "--read-only", "--trash-days", "2"))
