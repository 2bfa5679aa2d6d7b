"""`batchctl serve --ssl-keyfile/--ssl-certfile`: the pair is checked before the server starts (one line
naming the file and the problem, exit 3), an expired certificate is a warning, and the certificate (public)
is what `server.json` records, so that the CLI on this machine trusts exactly it (cli/_server_client.py)."""

from __future__ import annotations

import datetime
import os
import re
import ssl

from batchctl.errors import SpecError

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL)


def check_pair(certfile: str, keyfile: str) -> list[str]:
    """Refuse a certificate and key uvicorn could not serve; returns warnings (an expired certificate)."""
    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not os.path.exists(path):
            raise SpecError(f"{flag}: '{path}' does not exist")
        if not os.path.isfile(path):
            raise SpecError(f"{flag}: '{path}' is not a file")
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise SpecError(f"{flag}: cannot read '{path}': {exc.strerror or exc}") from None
    pems = certificates(certfile)
    if not pems:
        raise SpecError(f"--ssl-certfile: '{certfile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        ssl.create_default_context(cadata="\n".join(pems))
    except ssl.SSLError as exc:
        reason = _reason(exc)
        raise SpecError(f"--ssl-certfile: '{certfile}' holds a certificate that cannot be read ({reason})") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile, password=_no_password)
    except ssl.SSLError as exc:
        reason = _reason(exc)
        if "KEY_VALUES_MISMATCH" in reason.upper() or "key values mismatch" in reason.lower():
            raise SpecError(
                f"--ssl-keyfile: '{keyfile}' is not the private key of the certificate in '{certfile}'"
            ) from None
        raise SpecError(
            f"--ssl-keyfile: '{keyfile}' holds no usable private key (a PEM key without a password is needed)"
        ) from None
    expiry = not_after(pems[0])
    if expiry is not None and expiry < datetime.datetime.now(datetime.UTC):
        return [
            f"the certificate in '{certfile}' expired on {expiry:%Y-%m-%d %H:%M} UTC: clients will refuse it; "
            "renew it and restart the server"
        ]
    return []


def certificates(certfile: str) -> list[str]:
    """The PEM certificates of a file (a combined file may also hold the private key, which stays out)."""
    try:
        with open(certfile, encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return []
    return _PEM_CERT.findall(text)


def not_after(pem: str) -> datetime.datetime | None:
    """The certificate's expiry (None when it cannot be read)."""
    try:
        from cryptography import x509
    except ImportError:  # the server extra alone does not bring cryptography: no expiry warning then
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return None
    return cert.not_valid_after_utc


def _no_password() -> bytes:
    # without a callback OpenSSL would prompt on the terminal for an encrypted key's password
    return b""


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.strerror or exc)
