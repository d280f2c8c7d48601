"""Generated credentials: every password of the platform that an operator did not set."""

from __future__ import annotations

import pulumi
import pulumi_random as random


def secret_or_generated(
    name: str, override: pulumi.Input[str] | None, length: int, parent: pulumi.Resource
) -> pulumi.Output[str]:
    """The operator's secret when set, else a generated one; a Pulumi secret either way.

    Letters and digits only, so the value is safe in URLs, config files and SQL literals.
    """
    if override is not None:
        return pulumi.Output.secret(override)
    generated = random.RandomPassword(
        name, length=length, special=False, opts=pulumi.ResourceOptions(parent=parent)
    )
    return pulumi.Output.secret(generated.result)
