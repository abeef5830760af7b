"""TLS credentials made for one run, so that only this run's processes reach its scheduler.

A Dask scheduler runs any function a connected client sends it, so a scheduler that other users
of a shared cluster can reach is a way into the account that runs it. hpctune therefore never
listens in plain TCP beyond one host: each run makes a fresh self-signed key and certificate
(:meth:`distributed.Security.temporary`) and requires TLS with them for every connection.

Processes started by the run itself (a local cluster) get the credentials in memory. Workers
started on other nodes (``srun``, ``pbsdsh``, worker jobs) read them from files: a folder of
mode 0700 in the run's output (a shared filesystem, like the results), files of mode 0600,
removed when the run ends.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HpctuneError

FOLDER_PREFIX = ".dask-tls-"


def temporary_security() -> Any:
    """In-memory TLS credentials for processes this run starts itself."""
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError:
        raise HpctuneError(
            "TLS between Dask processes needs the 'cryptography' package: pip install cryptography"
        ) from None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file that only its owner may read (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Credentials:
    """PEM files of one run's TLS credentials, in a folder only the owner may enter."""

    folder: Path

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def cert_file(self) -> Path:
        return self.folder / "cert.pem"

    @property
    def key_file(self) -> Path:
        return self.folder / "key.pem"

    @property
    def scheduler_file(self) -> Path:
        return self.folder / "scheduler.json"

    def security(self) -> Any:
        """A :class:`distributed.Security` reading these files, for every role."""
        from distributed.security import Security

        ca, cert, key = str(self.ca_file), str(self.cert_file), str(self.key_file)
        return Security(
            require_encryption=True,
            tls_ca_file=ca,
            tls_client_cert=cert,
            tls_client_key=key,
            tls_scheduler_cert=cert,
            tls_scheduler_key=key,
            tls_worker_cert=cert,
            tls_worker_key=key,
        )

    def worker_args(self) -> list[str]:
        """The ``dask worker`` options that make a worker use these credentials."""
        return [
            "--tls-ca-file",
            str(self.ca_file),
            "--tls-cert",
            str(self.cert_file),
            "--tls-key",
            str(self.key_file),
        ]

    def write_scheduler_file(self, address: str, **extra: Any) -> Path:
        """A scheduler file (``Client(scheduler_file=...)`` style), readable by the owner alone."""
        write_private(self.scheduler_file, json.dumps({"address": address, **extra}, indent=2))
        return self.scheduler_file

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def write_credentials(parent: Path) -> Credentials:
    """Make fresh credentials and write them to a new 0700 folder inside ``parent``."""
    security = temporary_security()
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=parent))
    os.chmod(folder, 0o700)
    credentials = Credentials(folder)
    try:
        write_private(credentials.ca_file, security.tls_ca_file)
        write_private(credentials.cert_file, security.tls_worker_cert)
        write_private(credentials.key_file, security.tls_worker_key)
    except BaseException:
        credentials.remove()
        raise
    return credentials
