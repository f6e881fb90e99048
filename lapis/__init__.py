"""Lapis: a self-hosted machine-learning workspace."""

__version__ = "0.1.0"
