"""Command jobs: Azure ML CLI v2 job specs, their lifecycle, and the supervisor that runs them."""
