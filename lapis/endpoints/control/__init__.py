"""The control plane of online endpoints: endpoints, deployments, their instances and rollovers.

Everything here writes the metadata store; the data plane (``lapis.endpoints.data``)
only reads the route table this package publishes.
"""
