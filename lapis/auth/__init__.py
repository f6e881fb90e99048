"""Authentication: bearer tokens resolved to principals."""
