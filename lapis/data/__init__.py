"""The data layer: datastores (where data lives), data assets and job inputs/outputs."""
