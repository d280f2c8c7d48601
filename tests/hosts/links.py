"""The test hosts' network: a namespace per host, linked by veth pairs to a bridge that lives in
a namespace of its own (a bridge in the root namespace would be dropped by Docker's FORWARD
policy through br_netfilter). Each host has one address on that link and no route anywhere
else: nothing of a test host reaches past the link, and nothing outside reaches it.

Every name starts with the run's prefix, so what a run made is found by it (`ip netns list`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator, Sequence

NETNS_DIR = "/var/run/netns"
CLONE_NEWNET = 0x40000000
SUBNET_PREFIX = 24
BRIDGE = "br0"


class LinkError(RuntimeError):
    """An `ip` command failed; the message names it and what it said."""


def ip(*args: str) -> str:
    """Run `ip <args>`; its output, or LinkError with its message."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = result.stderr.strip() or f"exit code {result.returncode}"
        raise LinkError(f"ip {' '.join(args)}: {said}")
    return result.stdout


def namespaces(prefix: str) -> list[str]:
    """The network namespaces whose name starts with `prefix`."""
    listed = (line.split()[0] for line in ip("netns", "list").splitlines() if line.strip())
    return sorted(name for name in listed if name.startswith(prefix))


def add_namespace(name: str) -> None:
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")


def delete_namespace(name: str) -> None:
    """Remove it (with the links inside it); nothing when it is gone already."""
    if name in namespaces(name):
        ip("netns", "delete", name)


def add_switch(namespace: str) -> None:
    """The namespace holding the bridge every host's link joins."""
    add_namespace(namespace)
    ip("-n", namespace, "link", "add", BRIDGE, "type", "bridge")
    ip("-n", namespace, "link", "set", BRIDGE, "up")


def link(host: str, switch: str, port: str, address: str) -> None:
    """A veth pair between `host` (its end named eth0, with `address`) and the switch's bridge
    (its end named `port`)."""
    ip("link", "add", port, "type", "veth", "peer", "name", f"{port}h")
    ip("link", "set", f"{port}h", "netns", host)
    ip("link", "set", port, "netns", switch)
    ip("-n", switch, "link", "set", port, "master", BRIDGE, "up")
    ip("-n", host, "link", "set", f"{port}h", "name", "eth0")
    ip("-n", host, "address", "add", f"{address}/{SUBNET_PREFIX}", "dev", "eth0")
    ip("-n", host, "link", "set", "eth0", "up")


def cut(switch: str, port: str) -> None:
    """Take a host's link down at the switch: the host is cut off, as by a pulled cable."""
    ip("-n", switch, "link", "set", port, "down")


def mend(switch: str, port: str) -> None:
    ip("-n", switch, "link", "set", port, "up")


def in_namespace(namespace: str, argv: Sequence[str]) -> list[str]:
    """`argv` run inside the host's network namespace (only: mounts and /sys stay the
    machine's, which dockerd needs; `ip netns exec` would remount /sys)."""
    return ["nsenter", f"--net={NETNS_DIR}/{namespace}", *argv]


@contextlib.contextmanager
def entered(namespace: str) -> Iterator[None]:
    """The calling thread inside the host's network namespace for the block: a socket it opens
    there dials the host's own loopback (a published port of the host's engine). Only this
    thread moves (the kernel keeps a network namespace per thread), and it moves back."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"{NETNS_DIR}/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace}")
        try:
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:  # never leave a thread elsewhere
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(there)
        os.close(home)
