"""Batch endpoints: deployments that score folders of files as command jobs."""
