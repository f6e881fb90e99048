"""``azure.ai.ml.dsl`` → ``lapis.ml.dsl``: ``@dsl.pipeline`` (lapis/sdk/dsl.py)."""

from lapis.sdk.dsl import pipeline

__all__ = ["pipeline"]
