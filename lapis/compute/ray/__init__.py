"""Compute clusters on Ray: the backend (cluster.py), its nodes and node providers
(nodes.py), an attached cluster someone else runs (attached.py), what ``compute show``
says of the nodes (view.py) and multi-node gangs (gang.py)."""
