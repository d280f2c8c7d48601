"""Where a stack's state finds the traffic gate's provider when it was written before the
provider moved to components/dynamic/traffic_gate.py (see components/pids_limit.py for why).
"""

from components.dynamic.traffic_gate import TrafficGateProvider

__all__ = ["TrafficGateProvider"]
