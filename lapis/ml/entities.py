"""``azure.ai.ml.entities`` as Lapis has them (see ``lapis.ml``)."""

from lapis.sdk.assets import AmlCompute, BuildContext, ComputeInstance, Data, Environment
from lapis.sdk.components import CommandComponent
from lapis.sdk.datastores import (
    AccessKeyConfiguration,
    AccountKeyConfiguration,
    AzureBlobDatastore,
    AzureDataLakeGen2Datastore,
    AzureFileDatastore,
    Datastore,
    S3Datastore,
    SasTokenConfiguration,
    ServicePrincipalConfiguration,
)
from lapis.sdk.dsl import PipelineJob, PipelineJobSettings
from lapis.sdk.entities import CommandJob, Input, Output
from lapis.sdk.models import Model
from lapis.sdk.schedules import (
    CronTrigger,
    JobSchedule,
    RecurrencePattern,
    RecurrenceTrigger,
)
from lapis.sdk.serving_entities import (
    BatchDeployment,
    BatchEndpoint,
    BatchEndpointDefaults,
    BatchRetrySettings,
    CodeConfiguration,
    EndpointAuthKeys,
    EndpointAuthToken,
    KubernetesOnlineDeployment,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)
from lapis.sdk.views import Compute, Job

OnlineRequestSettings = dict  # Azure's settings objects are plain mappings here
ProbeSettings = dict

__all__ = [
    "AccessKeyConfiguration",
    "AccountKeyConfiguration",
    "AmlCompute",
    "AzureBlobDatastore",
    "AzureDataLakeGen2Datastore",
    "AzureFileDatastore",
    "BatchDeployment",
    "BatchEndpoint",
    "BatchEndpointDefaults",
    "BatchRetrySettings",
    "BuildContext",
    "CodeConfiguration",
    "CommandComponent",
    "CommandJob",
    "Compute",
    "ComputeInstance",
    "CronTrigger",
    "Data",
    "Datastore",
    "EndpointAuthKeys",
    "EndpointAuthToken",
    "Environment",
    "Input",
    "Job",
    "JobSchedule",
    "KubernetesOnlineDeployment",
    "ManagedOnlineDeployment",
    "ManagedOnlineEndpoint",
    "Model",
    "ModelBatchDeployment",
    "ModelBatchDeploymentSettings",
    "OnlineRequestSettings",
    "Output",
    "PipelineJob",
    "PipelineJobSettings",
    "ProbeSettings",
    "RecurrencePattern",
    "RecurrenceTrigger",
    "S3Datastore",
    "SasTokenConfiguration",
    "ServicePrincipalConfiguration",
]
