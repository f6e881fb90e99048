"""Environments: specs normalised and hashed, built once with uv, cached by content."""
