"""Workstations: the workspace's file share, and each compute instance's JupyterLab
and SSH, reached through the server (fileshare.py, lab.py, proxy.py)."""
