"""The Docker CLI words an operator uses on each engine: how to list a stack's workloads and
follow one's logs. `make up`'s closing words and `make logs` (deploy/) take them from here, so
they follow the engine like the resources do.
"""

from __future__ import annotations

from dataclasses import dataclass

STACK_LABEL = "com.ecommerce.stack"


@dataclass(frozen=True)
class OperatorCommands:
    kind: str
    """What one workload is called on this engine: `container` or `service`."""
    listing: tuple[str, ...]
    """`docker ...` arguments that list the running workloads."""
    name_format: str
    """The Go template that prints one workload's name in that listing."""
    logs: tuple[str, ...]
    """The command that prints a workload's logs (its options and name follow)."""
    bare_logs: tuple[str, ...]
    """The same, each line as the workload wrote it (for a tool that prefixes lines itself)."""

    def list_stack(self, stack: str, names_only: bool = False) -> list[str]:
        """The command that lists the stack's running workloads (one name a line)."""
        names = ["--format", self.name_format] if names_only else []
        return ["docker", *self.listing, "--filter", f"label={STACK_LABEL}={stack}", *names]

    def follow_logs(self, name: str) -> str:
        """What an operator types to follow one workload's logs."""
        return " ".join([*self.logs, "-f", name])


CONTAINERS = OperatorCommands(
    kind="container",
    listing=("ps",),
    name_format="{{.Names}}",
    logs=("docker", "logs"),
    bare_logs=("docker", "logs"),
)
SWARM = OperatorCommands(
    kind="service",
    listing=("service", "ls"),
    name_format="{{.Name}}",
    logs=("docker", "service", "logs"),
    # Without --raw each line starts with its task's name and node.
    bare_logs=("docker", "service", "logs", "--raw"),
)
_BY_ENGINE = {"containers": CONTAINERS, "swarm": SWARM}


def operator_commands(engine: str) -> OperatorCommands:
    """The commands of a stack file's `engine` (its default, `containers`, when unset)."""
    try:
        return _BY_ENGINE[engine]
    except KeyError:
        raise ValueError(
            f"engine {engine!r} is not one of {', '.join(sorted(_BY_ENGINE))}"
        ) from None
