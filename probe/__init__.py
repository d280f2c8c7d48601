"""The apps' health probe, run by the monitoring (components/health_probe.py)."""
