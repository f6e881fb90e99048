"""Compute targets: local process, compute instances, and (later) Ray clusters."""
