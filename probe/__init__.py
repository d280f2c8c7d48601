"""The apps' health probe, run by the monitoring (components/parts/monitoring.py)."""
