"""`batchctl serve` with TLS: a key and certificate it cannot serve are refused with one line naming the
file (exit 3), an expired certificate starts with a warning, and the CLI on the same machine hands jobs to
a server with a self-signed certificate by the certificate recorded in server.json (pinned), while a
certificate it cannot trust is named as such, never as "not reachable"."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from server_helpers import Server, Workspace

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def make_pair(folder: Path, name: str, days: int = 30, expired: bool = False) -> tuple[Path, Path]:
    """A real self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "batchctl test")])
    now = datetime.datetime.now(datetime.UTC)
    if expired:
        start, end = now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)
    else:
        start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_serve_refuses_a_key_and_certificate_it_cannot_serve(cli: Any, tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path, "a")
    _, other_key = make_pair(tmp_path, "b")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    missing = tmp_path / "missing.pem"
    cases = [
        (cert, other_key, f"Error: --ssl-keyfile: '{other_key}' is not the private key of the certificate in '{cert}'"),
        (
            cert,
            garbage,
            f"Error: --ssl-keyfile: '{garbage}' holds no usable private key (a PEM key without a password is needed)",
        ),
        (cert, missing, f"Error: --ssl-keyfile: '{missing}' does not exist"),
        (garbage, key, f"Error: --ssl-certfile: '{garbage}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        (missing, key, f"Error: --ssl-certfile: '{missing}' does not exist"),
    ]
    for certfile, keyfile, expected in cases:
        result = cli("serve", "--port", "0", "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile))
        assert (result.exit_code, result.stderr) == (3, expected + "\n"), (certfile.name, keyfile.name)
    assert not (Path(os.environ["BATCHCTL_HOME"]) / "server.json").exists()


def _invoke(ws: Workspace, data: Path, out: str, env: dict[str, str] | None = None) -> Any:
    full = {**os.environ, "BATCHCTL_HOME": str(ws.root), **(env or {})}
    full.pop("BATCHCTL_NO_SERVER", None)
    args = ["endpoint", "invoke", "-n", "heart", "-d", "script", "--input", str(data), "--output-path", out]
    return subprocess.run(
        [sys.executable, "-m", "batchctl", *args], capture_output=True, text=True, env=full, timeout=300
    )


@pytest.mark.slow
def test_the_cli_trusts_exactly_the_certificate_its_server_recorded(tmp_path: Path, heart_model: Path) -> None:
    ws = Workspace(tmp_path / "ws", heart_model)
    cert, key = make_pair(tmp_path / "tls", "self")
    server = Server(ws, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    try:
        assert server.url.startswith("https://127.0.0.1:")
        info_path = ws.root / "server.json"
        info = json.loads(info_path.read_text())
        assert info["certificate"].strip() == cert.read_text().strip()
        data = ws.commands("tls", {"a.txt": "ok"})

        taken = _invoke(ws, data, str(tmp_path / "o1"))
        assert taken.returncode == 0, taken.stderr
        assert "Warning" not in taken.stderr, taken.stderr
        assert json.loads(taken.stdout)["runner"]["pid"] == server.pid  # the server ran it

        # a server.json without the certificate (a server of an earlier version): the problem is named
        info_path.write_text(json.dumps({k: v for k, v in info.items() if k != "certificate"}))
        here = _invoke(ws, data, str(tmp_path / "o2"))
        assert here.returncode == 0, here.stderr
        assert json.loads(here.stdout)["runner"]["pid"] != server.pid
        warnings = [line for line in here.stderr.splitlines() if line.startswith("Warning: ")]
        assert warnings == [
            f"Warning: the server at {server.url} presents a certificate this machine does not trust (self-signed "
            "certificate); running the job here (restart `batchctl serve` with this version, which records its "
            "certificate in server.json for the CLI to trust, or set SSL_CERT_FILE to the certificate's file)"
        ]
        trusted = _invoke(ws, data, str(tmp_path / "o3"), env={"SSL_CERT_FILE": str(cert)})
        assert trusted.returncode == 0, trusted.stderr
        assert "Warning" not in trusted.stderr, trusted.stderr
        assert json.loads(trusted.stdout)["runner"]["pid"] == server.pid
    finally:
        server.kill()


@pytest.mark.slow
def test_an_expired_certificate_is_a_warning_on_both_sides(tmp_path: Path, heart_model: Path) -> None:
    ws = Workspace(tmp_path / "ws", heart_model)
    cert, key = make_pair(tmp_path / "tls", "old", expired=True)
    server = Server(ws, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    try:
        _, err = server.output()
        assert err.splitlines()[0].startswith(f"Warning: the certificate in '{cert}' expired on "), err
        assert err.splitlines()[0].endswith(" UTC: clients will refuse it; renew it and restart the server"), err
        result = _invoke(ws, ws.commands("old", {"a.txt": "ok"}), str(tmp_path / "o"))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["runner"]["pid"] != server.pid
        warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
        assert warnings == [
            f"Warning: the server at {server.url} presents an expired certificate (certificate has expired); "
            "running the job here (renew the certificate and restart `batchctl serve`)"
        ]
    finally:
        server.kill()
