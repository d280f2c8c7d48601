"""What every settings object shares: the strict base model, how an object reports the rules
it breaks, the value types, and the per-container settings (limits, hardening with the rule
that holds its flags together, logs, health check timing, a build from source)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from provider import canonical
from stacks.catalogue import Catalogue

Port = Annotated[int, Field(ge=1, le=65535)]
# PostgreSQL memory units as the server accepts them in `-c` settings.
PgMemory = Annotated[str, Field(pattern=r"^[1-9][0-9]*(kB|MB|GB|TB)$")]
# Docker's json-file log driver size, e.g. `10m`.
LogSize = Annotated[str, Field(pattern=r"^[1-9][0-9]*[kmg]$")]
Duration = Annotated[str, Field(pattern=r"^[1-9][0-9]*(ms|s|m|h)$")]
PidsLimit = Annotated[int, Field(ge=16, le=1_000_000)]


class StrictModel(BaseModel):
    """Base of every settings model: camelCase keys in YAML, no unknown keys, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        # A field's docstring is its description: in the editor schema and docs/settings.md.
        use_attribute_docstrings=True,
    )


Problem = tuple[str, str]
"""A broken rule: the key it is about, relative to the settings object that judges it (`image`,
`tls.email`; empty for the object itself), and what is wrong."""


def reject_if_any(problems: list[Problem]) -> None:
    """Raise the problems, if any, as one validation error each, at its key. Raised from the
    validator of a settings object, each key then follows the object's own place in the stack
    file (`backup` + `image`): every problem of the object is reported at once, one line each."""
    if problems:
        raise ValidationError.from_exception_data(
            "PlatformSettings",  # the title pydantic gives the whole stack file's errors
            [
                InitErrorDetails(
                    type=PydanticCustomError("settings_rule", text),
                    loc=tuple(key.split(".")) if key else (),
                    input=None,
                )
                for key, text in problems
            ],
        )


def catalogue_of(info: ValidationInfo) -> Catalogue:
    """The service catalogue the settings are judged against (`context={"catalogue": ...}`)."""
    context = info.context or {}
    catalogue: Catalogue | None = context.get("catalogue")
    if catalogue is None:
        raise ValueError("internal: settings must be validated with a catalogue context")
    return catalogue


class Resources(StrictModel):
    """Limits of one container."""

    memory_mb: int = Field(default=512, ge=16)
    """Hard memory limit (swap disabled)."""
    cpus: float = Field(default=1.0, gt=0, le=64)
    """CPU time, in cores (`docker run --cpus`)."""

    @field_validator("cpus")
    @classmethod
    def _kept_by_provider(cls, cpus: float) -> float:
        # A value the provider reads back differently would replace the container on every
        # deploy (provider/canonical.py).
        try:
            canonical.cpus(cpus)
        except canonical.NotKeptError as err:
            raise ValueError(f"{err}; use a value it keeps, such as 0.1, 0.25, 1 or 1.5") from None
        return cpus


class Hardening(StrictModel):
    """Container security profile applied to every container of the stack."""

    read_only_root: bool = True
    """Read-only root filesystem; writable paths come from volumes and tmpfs."""
    drop_all_capabilities: bool = True
    """Drop every Linux capability (`cap_drop: ALL`); needs `runAsNonRoot`."""
    no_new_privileges: bool = True
    """No process may gain privileges (setuid binaries, file capabilities)."""
    run_as_non_root: bool = True
    """Start as the image's unprivileged user instead of root-then-drop (needed with no caps)."""

    @model_validator(mode="after")
    def _no_capabilities_needs_a_non_root_start(self) -> Self:
        if self.drop_all_capabilities and not self.run_as_non_root:
            reject_if_any(
                [
                    (
                        "dropAllCapabilities",
                        "needs hardening.runAsNonRoot; the official postgres and redis images "
                        "start as root and cannot drop privileges without capabilities",
                    )
                ]
            )
        return self


class Logs(StrictModel):
    """Rotation of each container's logs by Docker's json-file driver."""

    max_size: LogSize = "10m"
    """Size of one log file before it is rotated (`10m`, `1g`)."""
    max_files: int = Field(default=5, ge=1, le=100)
    """Rotated files kept per container."""


class HealthCheck(StrictModel):
    """Docker's health check timing of every container (what `pulumi up` waits for)."""

    interval: Duration = "10s"
    """Time between two checks."""
    timeout: Duration = "5s"
    """A check that takes longer fails."""
    retries: int = Field(default=5, ge=1, le=100)
    """Failed checks in a row that make a container unhealthy."""
    start_period: Duration = "30s"
    """Failures in this time after a start do not count (the app is starting)."""


class BuildSettings(StrictModel):
    """An image built from source on the Docker host (like Compose's `build:`), never pushed."""

    context: str = Field(min_length=1)
    """The build context folder, relative to the project (e.g. `../customer-service`)."""
    dockerfile: str | None = None
    """Relative to the context; default `Dockerfile`."""
    args: dict[str, str] = Field(default_factory=dict)
    """Build arguments (`ARG`s of the Dockerfile): not secret, they stay in the image."""
    platform: str = Field(default="linux/amd64", pattern=r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
    """The platform it is built for (`docker build --platform`), `os/arch[/variant]`: the
    Docker host's, e.g. `linux/arm64` on Apple silicon (another one runs emulated, if at all)."""
