"""A dynamic provider loaded as Pulumi's dynamic-provider host loads it: from the state's
serialized string, by dill, in another process of the virtualenv, outside the project folder."""

from __future__ import annotations

import subprocess
import sys

LOAD = "import base64, sys, dill\np = dill.loads(base64.b64decode(sys.stdin.read()))\n"


def in_provider_host(serialized: str, then: str) -> list[str]:
    """Load the provider `serialized` as `p`, run the code `then`; what it printed, by word."""
    result = subprocess.run(
        [sys.executable, "-c", LOAD + then],
        cwd="/",
        check=True,
        text=True,
        capture_output=True,
        input=serialized,
    )
    return result.stdout.split()
