"""HTTPS: a self-signed certificate, TLS 1.2 minimum, HSTS, and jobs and the CLI that trust it."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lapis-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path, server_type: Any) -> Any:
    cert, key = _self_signed(tmp_path)
    server = server_type(home=tmp_path / "home")
    server.start_args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    server.verify = str(cert)
    try:
        yield server.start()
    finally:
        server.kill9()


def test_https_only_tls12_and_up_with_hsts(tls_server: Any, tmp_path: Path) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=tls_server.verify)
    r = httpx.get(
        f"{tls_server.url}/api/v1/whoami",
        verify=ctx,
        headers={"Authorization": f"Bearer {tls_server.token}"},
    )
    assert r.status_code == 200
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert r.headers["x-content-type-options"] == "nosniff"
    tls12 = ssl.create_default_context(cafile=tls_server.verify)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert httpx.get(f"{tls_server.url}/healthz", verify=tls12).status_code == 200
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # we mean to offer old versions
        old = ssl.create_default_context(cafile=tls_server.verify)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((httpx.ConnectError, ssl.SSLError)):
        httpx.get(f"{tls_server.url}/healthz", verify=old)
    plain = tls_server.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/healthz", timeout=5)
    page = httpx.get(f"{tls_server.url}/signin", verify=ctx)
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "secure" in page.headers["set-cookie"].lower()  # the CSRF cookie is Secure


def test_cli_and_jobs_trust_the_self_signed_certificate(tls_server: Any, tmp_path: Path) -> None:
    import time

    from jobkit import lapis_cli, write_job

    done = lapis_cli(tls_server, "auth", "whoami")
    assert done.returncode == 0, done.stderr
    assert "https://" in done.stdout
    job_file = write_job(
        tmp_path / "job",
        """\
        command: python log.py
        code: .
        environment: system
        """,
        files={
            "log.py": """\
            import mlflow
            with mlflow.start_run():
                mlflow.log_metric("over_tls", 1.0)
            print("logged over", mlflow.get_tracking_uri())
            """
        },
    )
    from lapis.sdk import jobs as sdk_jobs
    from lapis.sdk.connection import resolve

    with resolve(home=tls_server.home, prefer_home=True).client() as http:
        name = sdk_jobs.submit_file(http, job_file)["name"]
        job = http.get(f"/api/v1/jobs/{name}")
        deadline = time.monotonic() + 120
        while job["status"] not in ("Completed", "Failed", "Canceled"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
            job = http.get(f"/api/v1/jobs/{name}")
        log = http.get(f"/api/v1/jobs/{name}/logs")["data"]
        assert job["status"] == "Completed", log
        assert "logged over https://" in log
        run = http.get(f"/api/v1/runs/{job['run_id']}")
        assert run["metrics"]["over_tls"]["value"] == 1.0


def test_plain_http_off_loopback_warns(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lapis",
            "server",
            "--home",
            str(tmp_path / "h"),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "Warning: serving plain HTTP on 0.0.0.0" in line
    finally:
        proc.kill()
        proc.wait()


def test_mismatched_tls_files_are_one_line(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_key = _self_signed(other)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lapis",
            "server",
            "--home",
            str(tmp_path / "h"),
            "--port",
            "0",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(wrong_key),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "cannot use" in done.stderr and "Traceback" not in done.stderr
