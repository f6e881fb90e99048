"""Experiments, runs and metrics: the rules of tracking, over the metadata store."""
