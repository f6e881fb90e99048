"""``@pipeline``: pipelines written in Python (lapis/sdk/dsl.py has the how and why).

``from azure.ai.ml.dsl import pipeline`` becomes ``from lapis.dsl import pipeline``
(or ``from lapis.ml import dsl`` and ``@dsl.pipeline``)."""

from lapis.sdk.dsl import (
    NodeOutput,
    PipelineInput,
    PipelineJob,
    PipelineJobSettings,
    PipelineNode,
    PipelineOutput,
    pipeline,
)

__all__ = [
    "NodeOutput",
    "PipelineInput",
    "PipelineJob",
    "PipelineJobSettings",
    "PipelineNode",
    "PipelineOutput",
    "pipeline",
]
