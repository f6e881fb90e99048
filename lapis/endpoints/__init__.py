"""Online and batch endpoints (being built): the scoring runtime lives in runtime.py."""
