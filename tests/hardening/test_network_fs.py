"""A workspace on NFS/SMB/sshfs: detected from the mount table and warned about (docs/security.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from batchctl.registry import store


@pytest.fixture
def mounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """mounts(fstype) -> a fake /proc/mounts where the workspace's folder is a mount of that type."""

    def make(fstype: str, mount_point: Path | None = None) -> None:
        home = Path(os.environ["BATCHCTL_HOME"])
        point = str(mount_point or home.parent).replace(" ", "\\040")
        table = tmp_path / "mounts"
        table.write_text(
            "sysfs /sys sysfs rw,nosuid 0 0\n"
            "/dev/root / ext4 rw,relatime 0 0\n"
            f"server:/export {point} {fstype} rw,relatime,vers=4.2 0 0\n"
        )
        monkeypatch.setattr(store, "MOUNTS_FILE", str(table))

    return make


@pytest.mark.parametrize("fstype", ["nfs", "nfs4", "cifs", "smb3", "fuse.sshfs"])
def test_network_filesystem_is_detected_and_warned_once(cli, mounts, fstype):
    mounts(fstype)
    first = cli("endpoint", "create", "-n", "ep1")
    assert first.exit_code == 0
    home = Path(os.environ["BATCHCTL_HOME"])
    assert first.stderr == (
        f"Warning: the workspace {home} is on a {fstype} filesystem; the registry lock and atomic replace "
        "are only guaranteed on a local filesystem (docs/security.md). Use a local --workspace / "
        "BATCHCTL_HOME, or set BATCHCTL_ALLOW_NETWORK_FS=1 to silence this warning\n"
    )
    assert json.loads(first.stdout)["name"] == "ep1"  # a warning, not a refusal: the command worked
    assert cli("endpoint", "create", "-n", "ep2").stderr == ""  # once per process


def test_local_filesystem_gives_no_warning(cli, mounts):
    mounts("ext4")
    result = cli("endpoint", "create", "-n", "ep1")
    assert (result.exit_code, result.stderr) == (0, "")


def test_the_warning_can_be_silenced(cli, mounts, monkeypatch):
    mounts("nfs4")
    monkeypatch.setenv("BATCHCTL_ALLOW_NETWORK_FS", "1")
    result = cli("endpoint", "create", "-n", "ep1")
    assert (result.exit_code, result.stderr) == (0, "")


def test_longest_mount_point_wins_and_escapes_are_decoded(tmp_path, monkeypatch):
    spaced = tmp_path / "my share"
    (spaced / "ws").mkdir(parents=True)
    table = tmp_path / "mounts"
    table.write_text(
        f"server:/a {tmp_path} nfs4 rw 0 0\n/dev/sdb1 {str(spaced).replace(' ', chr(92) + '040')} ext4 rw 0 0\n"
    )
    monkeypatch.setattr(store, "MOUNTS_FILE", str(table))
    assert store.network_filesystem(spaced / "ws") is None  # a local disk mounted inside an NFS tree
    assert store.network_filesystem(tmp_path / "other") == "nfs4"
    assert store.network_filesystem(Path(str(tmp_path) + "-sibling")) is None  # a prefix is not a parent


def test_no_mount_table_means_no_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "MOUNTS_FILE", str(tmp_path / "missing"))
    assert store.network_filesystem(tmp_path) is None
