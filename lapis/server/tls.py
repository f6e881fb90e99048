"""HTTPS for ``lapis server --tls-cert F --tls-key F``.

The server speaks TLS 1.2 or newer. Its own jobs and the local CLI must trust
the certificate too: when it is self-signed (the usual case for a team server
inside a network), a CA bundle is written to ``home/tls/ca-bundle.pem`` holding
the public roots *and* that certificate, and given to jobs
(``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``) and to the CLI (through
``server.json``) — so a job's ``pip install`` still trusts PyPI while its
``mlflow`` client trusts Lapis. A certificate from a public CA needs nothing.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from lapis.errors import LapisError


def check_pair(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context (TLS 1.2 minimum) from the pair, or one line saying what is wrong."""
    for path, what in ((cert, "--tls-cert"), (key, "--tls-key")):
        if not path.is_file():
            raise LapisError(f"{what} {path} is not a file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        raise LapisError(f"cannot use {cert} with {key}: {exc}") from None
    return context


def self_signed(cert: Path) -> bool:
    from cryptography import x509

    try:
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    except ValueError:
        return False
    return bool(loaded.issuer == loaded.subject)


def ca_bundle(home: Path, cert: Path) -> Path | None:
    """The bundle jobs and clients should trust, or None when the defaults already do."""
    if not self_signed(cert):
        return None
    roots = ""
    try:
        import certifi

        roots = Path(certifi.where()).read_text()
    except (ImportError, OSError):
        default = ssl.get_default_verify_paths().cafile
        if default and os.path.exists(default):
            roots = Path(default).read_text()
    folder = home / "tls"
    folder.mkdir(mode=0o700, exist_ok=True)
    bundle = folder / "ca-bundle.pem"
    bundle.write_text(roots.rstrip("\n") + "\n" + cert.read_text())
    return bundle
