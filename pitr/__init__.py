"""Point-in-time recovery with pgBackRest: continuous WAL archiving and physical backups of each
PostgreSQL server, and restores to a timestamp, a named restore point or the latest state.

This package drives the `pgbackrest` program (Debian's 2.45; the server and every client must
run the same version); it never touches the repository's files itself.
"""
