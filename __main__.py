"""Entry point of `pulumi up`: load the stack's settings, build the platform, export outputs."""

import pulumi

from components.platform import Platform, PlatformArgs
from stacks.catalogue import PLATFORM
from stacks.loader import load
from stacks.outputs import DATABASES, MONITORING, PITR_PASSPHRASES

stack_config = load(PLATFORM)
platform = Platform(
    "platform",
    PlatformArgs(
        settings=stack_config.settings,
        catalogue=PLATFORM,
        secrets=stack_config.secrets,
        stack=pulumi.get_stack(),
        docker_config=stack_config.docker,
    ),
)

pulumi.export("urls", platform.urls)
pulumi.export("containers", platform.containers)
pulumi.export("networks", platform.networks.names())
# Read by the backup tool: `pulumi stack output databases --json --show-secrets`.
pulumi.export(DATABASES, platform.database_targets())
# Point-in-time recovery: each repository's passphrase, to keep outside the state as well.
if stack_config.settings.pitr.enabled:
    pulumi.export(PITR_PASSPHRASES, platform.pitr_passphrases())
# Where the monitoring UIs answer and who logs in (`--show-secrets` for the passwords).
if platform.monitoring is not None:
    pulumi.export(MONITORING, platform.monitoring_output())
