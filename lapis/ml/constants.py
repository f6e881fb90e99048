"""``azure.ai.ml.constants`` as Lapis has them (see ``lapis.ml``)."""

from lapis.sdk.assets import AssetTypes, InputOutputModes
from lapis.sdk.serving_entities import BatchDeploymentOutputAction

__all__ = ["AssetTypes", "BatchDeploymentOutputAction", "InputOutputModes"]
