"""Where a stack's state finds the PIDs limit's provider when it was written before the provider
moved to components/dynamic/pids_limit.py: Pulumi pickles a dynamic provider by reference to
its module, and deletes an old resource with the provider its state names. Keep this file while
any deployed stack may hold such a resource (every PIDs limit is replaced with its container).
"""

from components.dynamic.pids_limit import PidsLimitProvider

__all__ = ["PidsLimitProvider"]
