"""The data plane: routing scoring requests to instances without touching the database.

The proxy reads an in-memory route table (``routing``), forwards over pooled
connections (``upstream``) and counts what it saw (``telemetry``).
"""
