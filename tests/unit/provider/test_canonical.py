"""The provider's read-back forms, pinned value by value.

Each expected string was produced by the provider's own code path run in Go (docker/cli's
`ParseCPUs` on math/big, the provider's `nanoInt64ToDecimalString`, `time.Duration.String`).
"""

from __future__ import annotations

import pytest

from provider import canonical

CPUS_READ_BACK = [
    (1, "1.0"),
    (2, "2.0"),
    (10, "10."),
    (20, "20."),
    (64, "64.0"),
    (100, "100."),
    (0.5, "0.5"),
    (1.5, "1.5"),
    (0.25, "0.25"),
    (0.125, "0.125"),
    (0.1, "0.1"),
    (10.5, "10.5"),
]


@pytest.mark.parametrize(("cpus", "read_back"), CPUS_READ_BACK)
def test_cpus_are_sent_as_the_provider_reads_them_back(cpus: float, read_back: str) -> None:
    assert canonical.cpus(cpus) == read_back
    # ... and the provider parses that form to the same number of billionths.
    assert canonical.nano_cpus(read_back) == round(cpus * 10**9)


@pytest.mark.parametrize(
    ("cpus", "message"),
    [
        (0.05, "0.05 is read back by the Docker provider as 0.1"),
        (0.01, "0.01 is read back by the Docker provider as 0.0"),
        (10.05, "10.05 is read back by the Docker provider as 10.1"),
        (0.3333333333, "more than 9 decimals"),
    ],
)
def test_cpus_the_provider_cannot_keep_are_refused(cpus: float, message: str) -> None:
    with pytest.raises(canonical.NotKeptError, match=message):
        canonical.cpus(cpus)


@pytest.mark.parametrize(
    ("written", "read_back"),
    [
        ("10s", "10s"),
        ("1m", "1m0s"),
        ("2h", "2h0m0s"),
        ("90s", "1m30s"),
        ("1500ms", "1.5s"),
        ("500ms", "500ms"),
        ("1000ms", "1s"),
        ("61m", "1h1m0s"),
        ("3600s", "1h0m0s"),
    ],
)
def test_durations_are_sent_as_go_prints_them(written: str, read_back: str) -> None:
    assert canonical.duration(written) == read_back


def test_go_duration_of_zero_and_below_a_second() -> None:
    assert canonical.go_duration_string(0) == "0s"
    assert canonical.go_duration_string(1_500_000) == "1.5ms"
    assert canonical.go_duration_string(2_000) == "2µs"


def test_a_duration_without_a_unit_is_refused() -> None:
    with pytest.raises(canonical.NotKeptError, match="not a duration like 10s"):
        canonical.duration("10")
