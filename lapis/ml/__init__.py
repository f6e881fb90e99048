"""azure-ai-ml's import paths, answered by Lapis: ``azure.ai.ml`` → ``lapis.ml``.

A script written for Azure ML runs after its imports change
(``from azure.ai.ml import MLClient, command, Input, Output`` becomes
``from lapis.ml import …``; ``azure.ai.ml.entities`` and
``azure.ai.ml.constants`` likewise) and its client is built for Lapis
(``MLClient.from_config()`` with a Lapis ``config.json``, or
``MLClient.from_home()``). The names here are the SDK's own
(``lapis.sdk``); this package only arranges them where Azure code looks.
"""

from lapis.ml import dsl
from lapis.sdk.client import MLClient
from lapis.sdk.components import load_component
from lapis.sdk.entities import (
    Input,
    MpiDistribution,
    Output,
    PyTorchDistribution,
    TensorFlowDistribution,
    command,
)
from lapis.sdk.views import Poller

__all__ = [
    "Input",
    "MLClient",
    "MpiDistribution",
    "Output",
    "Poller",
    "PyTorchDistribution",
    "TensorFlowDistribution",
    "command",
    "dsl",
    "load_component",
]
