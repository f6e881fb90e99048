"""Packaging a model with its scoring server as a self-contained Docker build context."""
