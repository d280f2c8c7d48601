"""Container inputs in the form the provider reads them back.

The provider's create ends with its Read (`resourceDockerContainerCreate` returns
`resourceDockerContainerRead`, internal/provider/resource_docker_container_funcs.go, v4.5.0), so
what Pulumi records is the engine's answer in the provider's own format, and the next
`pulumi up` compares the program's inputs with that. An input written any other way is a change
on every deploy, and for an input that replaces on change, a restart on every deploy.

Inputs the program sets that Read rewrites:
- `cpus`: sent as a decimal string, parsed by docker/cli `opts.ParseCPUs` (big.Rat, exact
  billionths), read back by `nanoInt64ToDecimalString` (helpers.go): `"1"` comes back `"1.0"`,
  `"10"` as `"10."`, and `"0.05"` as `"0.1"` (it rounds).
- health-check durations: parsed by Go's `time.ParseDuration`, read back by `Duration.String()`:
  `"1m"` comes back `"1m0s"`, `"1500ms"` as `"1.5s"`.

Inputs already in their read-back form, so nothing to do: `memory`, `memory_swap` and `shm_size`
(whole MB, read back as bytes / 1024 / 1024), `restart`, `user`, `command`, `read_only`,
`security_opts`, `tmpfs` and `log_opts` (read back as the engine stores them, which is as sent),
`ports` (read back from the bindings, one per port as the program publishes them). Inputs Read
never touches (`envs`, `labels`, `volumes`, `networks_advanced`, `uploads`) keep what was sent.

Values were checked against Go's own math/big and time packages.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

NANO = 10**9


class NotKeptError(ValueError):
    """The provider would read the value back as something else (or refuse it)."""


def nano_cpus(value: float | str) -> int:
    """`opts.ParseCPUs`: the exact number of billionths of a CPU, or an error."""
    try:
        exact = Fraction(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        raise NotKeptError(f"{value!r} is not a number") from None
    nano = exact * NANO
    if nano.denominator != 1:
        raise NotKeptError(f"{value} has more than 9 decimals (Docker counts billionths)")
    return int(nano)


def cpus_read_back(nano: int) -> str:
    """`nanoInt64ToDecimalString`: how Read writes NanoCpus into the provider's state."""
    if nano == 0:
        return "0"
    ratio = Fraction(nano, NANO)
    text = _float_string(ratio, 9)
    # The provider's own shortcut for "round" values: with nine zeros in the 9-digit form it
    # prints one decimal, rounded, so 0.05 (0.050000000) becomes 0.1 and 10.05 becomes 10.1.
    if text.count("0") == 9:
        return _float_string(ratio, 1)
    return text.rstrip("0")


def cpus(value: float) -> str:
    """The `cpus` input that reads back unchanged; refused when no string can."""
    nano = nano_cpus(value)
    text = cpus_read_back(nano)
    if nano_cpus(text) != nano:
        raise NotKeptError(
            f"{value:g} is read back by the Docker provider as {text}, so every deploy would "
            "replace the container"
        )
    return text


def _float_string(x: Fraction, prec: int) -> str:
    """Go's `big.Rat.FloatString`: `prec` decimals, the last rounded half away from zero."""
    scaled, remainder = divmod(x.numerator * 10**prec, x.denominator)
    if 2 * remainder >= x.denominator:
        scaled += 1
    whole, fraction = divmod(scaled, 10**prec)
    return f"{whole}.{fraction:0{prec}d}" if prec else str(whole)


_DURATION = re.compile(r"^(?:[0-9]+(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"([0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": NANO,
    "m": 60 * NANO,
    "h": 3600 * NANO,
}


def nanoseconds(duration: str) -> int:
    """A whole-numbered Go duration (`10s`, `1m30s`, `500ms`) in nanoseconds."""
    if _DURATION.match(duration) is None:
        raise NotKeptError(f"{duration!r} is not a duration like 10s, 1m or 500ms")
    return sum(int(n) * _UNIT_NS[unit] for n, unit in _DURATION_PART.findall(duration))


def duration(text: str) -> str:
    """The duration as Go's `time.Duration.String()` writes it: `1m` -> `1m0s`."""
    return go_duration_string(nanoseconds(text))


def go_duration_string(ns: int) -> str:
    """Go's `time.Duration.String()` for a non-negative duration."""
    if ns == 0:
        return "0s"
    if ns < NANO:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return _trim_fraction(Fraction(ns, size)) + unit
    seconds, minutes, hours = Fraction(ns, NANO) % 60, ns // (60 * NANO) % 60, ns // (3600 * NANO)
    text = _trim_fraction(seconds) + "s"
    if ns >= 60 * NANO:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return text


def _trim_fraction(x: Fraction) -> str:
    """A decimal with no trailing zeros and no point when whole (Go's `fmtFrac`)."""
    whole = x.numerator // x.denominator
    rest = x - whole
    if rest == 0:
        return str(whole)
    digits = _float_string(rest, 9).split(".")[1].rstrip("0")
    return f"{whole}.{digits}"


# Swarm services (resource_docker_service_structures.go, v4.5.0) read every duration back
# through `shortDur(d)`: Go's `Duration.String()` without a trailing `0s` after minutes and
# `0m` after hours. `"90s"` comes back `"1m30s"`, `"5m0s"` and `"300s"` as `"5m"`, `"1h0m0s"`
# as `"1h"`: any other spelling is a change on every `pulumi up`.


def short_duration(text: str) -> str:
    """A duration as the service's Read writes it: `90s` -> `1m30s`, `300s` -> `5m`."""
    return short_duration_of(nanoseconds(text))


def short_duration_of(ns: int) -> str:
    """`shortDur`: nanoseconds as the service's Read writes them."""
    text = go_duration_string(ns)
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return text
