"""Entry point of `pulumi up`: load the stack's settings, build the platform, export outputs."""

import pulumi

from components.outputs import stack_outputs
from components.platform import Platform, PlatformArgs
from sdk import output_wait
from stacks.catalogue import PLATFORM
from stacks.loader import load

# Before the body: the SDK's wait for pending outputs at the end, without its quadratic cost.
output_wait.install()
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
for name, value in stack_outputs(platform).items():
    pulumi.export(name, value)
