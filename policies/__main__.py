"""Entry point of the policy pack: `pulumi preview --policy-pack policies`.

Advisory by default (dev); prod is run with `--policy-pack-config policies/prod.json`, which
makes every rule mandatory. Constructing `PolicyPack` starts the pack's gRPC server, which is
why nothing else imports this module.
"""

import sys
from pathlib import Path

# The CLI runs this file from policies/ with the pack's own virtualenv: the project root on the
# path lets the pack import the same rules the offline plan and the tests use.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.pack import PACK_NAME, policies

PolicyPack(PACK_NAME, policies(), enforcement_level=EnforcementLevel.ADVISORY)
