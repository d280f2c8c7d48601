"""The TLS both sides of the off-host repository speak (docs/pitr.md): where each reads its
files, the names and ports they dial each other by, and what one database server's side is given
(components/parts/off_host.py makes the certificates; components/parts/pitr.py writes a
server's files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import pulumi

from components.dynamic.certificates import IssuedCertificate
from components.engine.base import Endpoint, HomeLinks
from pitr import layout
from pitr.off_host import TlsFiles

REPOSITORY_CLIENT = "pitr-repository"
"""The common name of the repository's client certificate, which each database's TLS server
authorises for its own stanza."""
DATABASE_TLS_PORT = 8433
"""The port of each database server's TLS server inside its agent's container (on separate
Docker hosts published on the databases' host as `offHost.databasePortsFrom` and the next ones);
the production rules let an agent publish this one (policies/rules.py, TLS_SERVER_PORTS)."""
REPOSITORY_TLS_PORT = 8432
"""The repository's TLS server's port inside its container (on a separate Docker host published
there as `offHost.port`)."""
LISTEN_ALL = "0.0.0.0"  # noqa: S104 (inside its container; the published port decides)

CA_FILE = "ca.crt"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
CLIENT_CERT, CLIENT_KEY = "client.crt", "client.key"


def tls_path(file_name: str) -> PurePosixPath:
    """Where a side reads one of its TLS files: beside its pgbackrest.conf, but for its private
    keys, which its entrypoint copies where its user alone reads them (pitr/tls.py)."""
    folder = layout.KEYS_DIR if file_name.endswith(".key") else layout.CONFIG_DIR
    return folder / file_name


SERVER_TLS = TlsFiles(tls_path(SERVER_CERT), tls_path(SERVER_KEY), tls_path(CA_FILE))
CLIENT_TLS = TlsFiles(tls_path(CLIENT_CERT), tls_path(CLIENT_KEY), tls_path(CA_FILE))
"""Each side's own certificates as it reads them: its TLS server's, and the one it dials the
other side with."""


@dataclass(frozen=True)
class DatabaseTls:
    """What a database server's side needs to reach repo2 and to be backed up from it."""

    ca_pem: pulumi.Output[str]
    server: IssuedCertificate
    """Its TLS server's, for the names the repository's host dials it by."""
    client: IssuedCertificate
    """Its archiving's, whose common name (the stanza) the repository authorises."""
    endpoint: Endpoint
    """Where the repository dials its TLS server (in its agent)."""


@dataclass(frozen=True)
class OffHostLink:
    """One database server's side of the off-host repository: it archives into repo2 at
    `repository` and serves the repository's backups of it, over the network `homes` gives
    its home."""

    tls: DatabaseTls
    repository: Endpoint
    homes: HomeLinks
    repository_workload: pulumi.Resource | None = None
    """The repository's container or service: the server is created after it (its start guard
    asks the repository for backups; until it answers, the guard refuses the first start and
    the engine starts the server again)."""
