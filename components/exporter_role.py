"""Where a stack's state finds the exporter role's provider when it was written before the
provider moved to components/dynamic/exporter_role.py (see components/pids_limit.py for why).
The role script deployed in every server still names this file: it is deployed text, so it
stays as it is until the script changes anyway; the role itself is components/parts/
exporter_login.py.
"""

from components.dynamic.exporter_role import ExporterRoleProvider

__all__ = ["ExporterRoleProvider"]
