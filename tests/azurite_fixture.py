"""Placeholder replaced by the Azurite session fixture."""
