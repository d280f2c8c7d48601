"""States written before the dynamic providers moved to components/dynamic/ name them at their
former places: Pulumi's dynamic-provider host must still load them from there, for every diff,
update and delete of such a resource (components/pids_limit.py says why)."""

from __future__ import annotations

import pytest

from tests.unit.components.dynamic.host import in_provider_host

# What `serialize_provider` wrote for each provider at c9fa57a, as a state holds it.
FORMER = {
    "components.dynamic.pids_limit.PidsLimitProvider": (
        "gASVMgAAAAAAAACMFWNvbXBvbmVudHMucGlkc19saW1pdJSMEVBpZHNMaW1pdFByb3ZpZGVylJOUKYGULg=="
    ),
    "components.dynamic.traffic_gate.TrafficGateProvider": (
        "gASVNgAAAAAAAACMF2NvbXBvbmVudHMudHJhZmZpY19nYXRllIwTVHJhZmZpY0dhdGVQcm92aWRlcpSTlCmBlC4="
    ),
    "components.dynamic.exporter_role.ExporterRoleProvider": (
        "gASVOAAAAAAAAACMGGNvbXBvbmVudHMuZXhwb3J0ZXJfcm9sZZSMFEV4cG9ydGVyUm9sZVByb3ZpZGVylJOUKYGULg=="
    ),
}


@pytest.mark.parametrize(
    ("now", "serialized"), FORMER.items(), ids=[k.split(".")[2] for k in FORMER]
)
def test_a_provider_at_its_former_place_loads_as_the_one_here(now: str, serialized: str) -> None:
    # As the host does: in another process of the virtualenv, from the state's string, then a
    # diff that only the serialized provider changes (none: that is no reason to touch it).
    printed = in_provider_host(
        serialized,
        "o = {'containerId': 'a', '__provider': 'x'}\n"
        "print(f'{type(p).__module__}.{type(p).__name__}',"
        " p.diff('a', o, {**o, '__provider': 'y'}).changes)\n",
    )
    assert printed == [now, "False"]
