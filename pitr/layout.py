"""Where things are inside the PostgreSQL containers of a stack with PITR on.

The database container and its PITR agent run the same image (pitr/Dockerfile) and mount the
same volumes at the same paths: pgBackRest checks that the data directory it backs up is the
one the server reports, and talks to the server through its Unix socket as the OS user
`postgres`. The Pulumi program (components/) and the tool inside the containers (pitr/) both
read these constants, so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import PurePosixPath

DATA_MOUNT = PurePosixPath("/var/lib/postgresql/data")
PG_PATH = DATA_MOUNT / "pgdata"
"""PGDATA: a subdirectory, so initdb never meets the volume root's leftovers."""
RECOVERY_REQUEST = DATA_MOUNT / "pitr-recovery-request"
"""Written into an empty data volume by the recovery of a lost host (deploy/recovery.py): the
restore target the server's start guard restores to, instead of refusing (pitr/guard.py)."""
PG_PORT = 5432
PG_USER = "postgres"
SOCKET_DIR = PurePosixPath("/var/run/postgresql")
"""The server's socket directory, a volume shared with the agent."""

PGBACKREST_MOUNT = PurePosixPath("/var/lib/pgbackrest")
"""The repository volume (Debian's package gives this folder to `postgres`)."""
REPO_PATH = PGBACKREST_MOUNT / "repo"
WORK_PATH = PGBACKREST_MOUNT / "work"
"""Locks and the agent's status, on the shared volume: the server's `archive-push` and the
agent's backups see each other's locks."""
STATUS_FILE = WORK_PATH / "agent-status.json"
OFFHOST_STATUS_FILE = WORK_PATH / "offhost-status.json"
"""Beside an off-host repository, what the agent last saw of repo2 (pitr/offhost_watch.py)."""

CONFIG_DIR = PurePosixPath("/etc/pgbackrest")
"""The configuration (it holds the repository passphrase), mounted read-only."""
CONFIG_FILE = CONFIG_DIR / "pgbackrest.conf"
KEYS_DIR = PurePosixPath("/tmp/pgbackrest-keys")
"""Where the private keys beside the configuration are copied at start, on the container's own
tmpfs (pitr/tls.py): pgBackRest refuses a key that others may read, and the platform writes
every configuration file readable by all."""
AGENT_CONFIG_FILE = CONFIG_DIR / "agent.conf"
"""Beside an off-host repository, the agent's own: repo1 alone, so that its checks and backups
do not wait on repo2 (CONFIG_FILE has both, for the server's archiving and its TLS server)."""

DRILL_PATH = PurePosixPath("/var/lib/pgbackrest-drill")
"""The agent's scratch volume, where each drill restores and starts a throwaway server."""
