"""Routing algorithms, one per module."""
