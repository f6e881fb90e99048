"""Online and batch endpoints, by concept: control/, data/, batch/, packaging/, runtime/.

The documents they read are parsed in ``lapis.specs`` (endpoint, deployment, batch).
"""
