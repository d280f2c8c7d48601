"""Backup, verify, restore and prune the platform's PostgreSQL databases.

Standard library only, so the backup container image needs nothing but python3 and a
PostgreSQL client. `python -m backup --help` lists the commands; docs/backup.md explains them.
"""

__version__ = "1.0.0"
