"""The off-host repository (repo2): a pgBackRest repository on another host, so that losing a
database's host loses neither its WAL archive nor its backups (docs/pitr.md).

Its layout, as pgBackRest 2.45 allows it:
- each database server keeps repo1 beside it and reaches repo2 through the repository host's
  TLS server (`pgbackrest server`): `archive-push` sends every WAL segment to both,
  asynchronously (`archive-async`: a repository out of reach queues segments in the spool, it
  stops nothing);
- backups into repo2 run on the repository host (2.45 refuses them from the database's side
  when the repository is remote), which reads each database through a TLS server of pgBackRest
  beside it;
- both sides authenticate with certificates of the stack's own CA: the repository lets each
  database's certificate (its common name: the stanza's name) reach that stanza only, and each
  database lets the repository's certificate reach its own stanza only (`tls-server-auth`);
- repo2 is encrypted with a passphrase that only the repository host holds: a database host,
  or a thief of its disk, cannot read it. pgBackRest asks the repository's side to encrypt.

Both sides number the off-host repository 2: the database's side sends its index to the
repository's, which must know the repository under the same key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from pitr.errors import UsageError
from pitr.pgbackrest import Stanza, render_config

REPO = 2
"""The off-host repository's index, on both sides."""
IO_TIMEOUT_S = 10
"""How long the database's side waits on the repository (a connection, a read) before it gives
up on it for this push: what repo1 lags behind while repo2 is out of reach."""
QUEUE_MAX = "4GiB"


@dataclass(frozen=True)
class TlsFiles:
    """A side's certificate, its key and the CA that signed the other side's."""

    cert: PurePath
    key: PurePath
    ca: PurePath


@dataclass(frozen=True)
class Listener:
    """pgBackRest's TLS server on one side, and who may reach which stanza through it."""

    address: str
    port: int
    tls: TlsFiles
    authorised: dict[str, Sequence[str]]
    """Client common name -> the stanzas it may reach."""

    def lines(self) -> list[str]:
        if not self.authorised:
            raise UsageError("a TLS server of pgBackRest must authorise at least one client")
        return [
            f"tls-server-address={self.address}",
            f"tls-server-port={self.port}",
            f"tls-server-cert-file={self.tls.cert}",
            f"tls-server-key-file={self.tls.key}",
            f"tls-server-ca-file={self.tls.ca}",
            *(
                f"tls-server-auth={client}={','.join(stanzas)}"
                for client, stanzas in sorted(self.authorised.items())
            ),
        ]


@dataclass(frozen=True)
class RepositoryAddress:
    """Where a database server reaches the repository host."""

    host: str
    """The name (or address) it dials: the repository's certificate must carry it."""
    port: int
    config: PurePath
    """The repository host's own pgbackrest.conf: pgBackRest asks its server to read it."""
    client: TlsFiles
    """The database's certificate (common name: the stanza's name) and the CA."""


def database_config(
    stanza: Stanza, passphrase: str, repository: RepositoryAddress, listener: Listener
) -> str:
    """A database server's pgbackrest.conf with repo1 beside it and repo2 on the repository
    host; `listener`: its own TLS server, which the repository host reads backups through."""
    return render_config(
        stanza,
        passphrase,
        [
            f"repo{REPO}-host={repository.host}",
            f"repo{REPO}-host-type=tls",
            f"repo{REPO}-host-port={repository.port}",
            f"repo{REPO}-host-config={repository.config}",
            f"repo{REPO}-host-cert-file={repository.client.cert}",
            f"repo{REPO}-host-key-file={repository.client.key}",
            f"repo{REPO}-host-ca-file={repository.client.ca}",
            # WAL goes out in the background, several segments at once, each to both
            # repositories. With repo2 out of reach the server's archiver fails and retries
            # (WAL waits in pg_wal for repo2), while the background process keeps pushing the
            # segments that are ready to repo1, each after repo2's connection gave up: so
            # that is quick (`io-timeout`, 60 s by default: repo1 fell minutes behind).
            "archive-async=y",
            f"io-timeout={IO_TIMEOUT_S}",
            # The most WAL kept for repo2 while it is away; beyond it pgBackRest drops
            # segments (a gap in repo2, never in repo1) rather than fill the server's disk.
            f"archive-push-queue-max={QUEUE_MAX}",
            *listener.lines(),
        ],
    )


@dataclass(frozen=True)
class RemoteDatabase:
    """A database server as the repository host reaches it: a stanza of repo2."""

    stanza: Stanza
    """Its name and where its data are on its own host (pg1-path, port, socket, user)."""
    host: str
    port: int
    config: PurePath
    """The database host's pgbackrest.conf, which its TLS server reads."""


def repository_config(
    databases: Sequence[RemoteDatabase],
    passphrase: str,
    repo_path: PurePath,
    work_path: PurePath,
    listener: Listener,
    client: TlsFiles,
    retention_full: int,
) -> str:
    """The repository host's pgbackrest.conf: repo2 encrypted with `passphrase` (which only this
    host holds), its TLS server (`listener`), and how it reaches each database to back it up
    with `client`, its own certificate."""
    if not passphrase or "\n" in passphrase:
        raise UsageError("the off-host repository's passphrase must be one non-empty line")
    if not databases:
        raise UsageError("the off-host repository needs at least one database to serve")
    lines = [
        "[global]",
        f"repo{REPO}-path={repo_path}",
        f"repo{REPO}-cipher-type=aes-256-cbc",
        f"repo{REPO}-cipher-pass={passphrase}",
        f"repo{REPO}-retention-full={retention_full}",
        "compress-type=zst",
        "start-fast=y",
        f"lock-path={work_path / 'lock'}",
        f"log-path={work_path / 'log'}",
        "log-level-file=off",
        "log-level-console=info",
        *listener.lines(),
    ]
    for database in databases:
        s = database.stanza
        lines += [
            "",
            f"[{s.name}]",
            f"pg1-host={database.host}",
            "pg1-host-type=tls",
            f"pg1-host-port={database.port}",
            f"pg1-host-config={database.config}",
            f"pg1-host-cert-file={client.cert}",
            f"pg1-host-key-file={client.key}",
            f"pg1-host-ca-file={client.ca}",
            f"pg1-path={s.pg_path}",
            f"pg1-port={s.pg_port}",
            f"pg1-socket-path={s.pg_socket}",
            f"pg1-user={s.pg_user}",
        ]
    return "\n".join([*lines, ""])
