"""The data directory's secret file and lock, against the real file system."""

import contextlib
import os
import stat
import subprocess

import pytest

from arangotasks import datadir
from arangotasks.config import Settings, load_access
from arangotasks.datadir import DataDirError, DirectoryLock


def test_empty_secret_file_is_replaced(tmp_path, caplog):
    (tmp_path / "jwt-secret").write_text("")
    access = load_access(Settings(data_dir=tmp_path, jwt_secret=None))
    assert len(access.jwt_secret) >= datadir.MIN_SECRET_CHARS
    assert (tmp_path / "jwt-secret").read_text().strip() == access.jwt_secret
    assert stat.S_IMODE((tmp_path / "jwt-secret").stat().st_mode) == 0o600
    assert "is empty: generating a new JWT secret" in caplog.text
    # Kept from now on.
    assert load_access(Settings(data_dir=tmp_path)).jwt_secret == access.jwt_secret


def test_short_secret_file_is_refused(tmp_path):
    (tmp_path / "jwt-secret").write_text("abc\n")
    with pytest.raises(DataDirError, match="3 characters"):
        load_access(Settings(data_dir=tmp_path))


def test_secret_on_a_full_disk_leaves_no_file(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with contextlib.suppress(OSError), open(mount / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        with pytest.raises(DataDirError, match="cannot write the JWT secret"):
            datadir.jwt_secret(mount)
        assert sorted(p.name for p in mount.iterdir()) == ["filler"]
        (mount / "filler").unlink()
        secret = datadir.jwt_secret(mount)
        assert (mount / "jwt-secret").read_text() == secret + "\n"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_lock_is_exclusive_and_names_the_holder(tmp_path):
    first = DirectoryLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(DataDirError, match=f"pid {os.getpid()}"):
            DirectoryLock(tmp_path).acquire()
    finally:
        first.release()
    again = DirectoryLock(tmp_path)
    again.acquire()
    again.release()
