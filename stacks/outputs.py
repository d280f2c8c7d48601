"""The stack's outputs that hold secrets by design, named once for the program that exports them
and the policy pack that allows a secret there and nowhere else among them. Standard library
only: the policy pack imports it in its own virtualenv.

- `databases.<service>.password`: what the backup tool connects with;
- `pitrPassphrases.<service>`: each PITR repository's passphrase, for operators to keep a copy
  outside the state (`pitrPassphrases.pitr-repository`: the off-host repository's);
- `monitoring.grafanaPassword`, `monitoring.prometheusPassword`: the logins of the monitoring
  UIs.
Pulumi keeps both encrypted in the state and hides them from `pulumi stack output`.
"""

from __future__ import annotations

import re

DATABASES = "databases"
PITR_PASSPHRASES = "pitrPassphrases"
MONITORING = "monitoring"
SECRET_OUTPUTS = re.compile(
    rf"{DATABASES}\.[^.]+\.password|{PITR_PASSPHRASES}\.[^.]+"
    rf"|{MONITORING}\.(grafanaPassword|prometheusPassword)"
)
