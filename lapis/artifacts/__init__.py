"""Artifact storage over fsspec."""
