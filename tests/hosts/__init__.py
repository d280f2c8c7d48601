"""Test hosts: separate Docker hosts on this machine, each a `dockerd` in network, PID and mount
namespaces of its own, linked by a private network and nothing else (hosts.py)."""

from tests.hosts.hosts import Host, TestHosts, leftovers

__all__ = ["Host", "TestHosts", "leftovers"]
