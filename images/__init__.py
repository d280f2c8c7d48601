"""Recipes and builder of the local Docker images the integration tests run (no registry)."""
