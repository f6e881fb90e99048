# An azure-ai-ml script as Azure's SDK samples write one, with two changes:
# the imports name lapis.ml instead of azure.ai.ml, and the client comes from
# a Lapis config.json (MLClient.from_config, as on Azure). Prints a JSON summary.
import json
import sys
import uuid

from lapis.ml import Input, MLClient, Output, command
from lapis.ml.constants import AssetTypes, BatchDeploymentOutputAction, InputOutputModes
from lapis.ml.entities import (
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    ComputeInstance,
    Environment,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)

ml_client = MLClient.from_config(credential=None)
suffix = "s" + uuid.uuid4().hex[:6]  # a letter after every "-", as names require
summary = {}

# compute instance
ci = ComputeInstance(name=f"ci-{suffix}", size="Standard_DS1_v2")
compute = ml_client.compute.begin_create_or_update(ci).result()
summary["compute_state"] = compute.state

# a command job on it
env = Environment(
    image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
    description="the image's Python stands for Lapis' interpreter",
)
job = command(
    code="./src",
    command="python train.py --data ${{inputs.data}} --scale ${{inputs.scale}} "
    "--model ${{outputs.model}}",
    inputs={
        "data": Input(type=AssetTypes.URI_FILE, path="./data/train.csv", mode=InputOutputModes.RO_MOUNT),
        "scale": 0.5,
    },
    outputs={"model": Output(type=AssetTypes.URI_FOLDER)},
    environment=env,
    compute=ci.name,
    experiment_name="sdk-sample",
    display_name="train a tiny model",
)
returned_job = ml_client.jobs.create_or_update(job)
summary["studio_url"] = returned_job.studio_url
ml_client.jobs.stream(returned_job.name, out=sys.stderr)
finished = ml_client.jobs.get(returned_job.name)
summary["job_status"] = finished.status

# register the job's output as a model
model = Model(
    path=f"azureml://jobs/{returned_job.name}/outputs/model",
    name=f"tiny-{suffix}",
    type=AssetTypes.CUSTOM_MODEL,
    description="trained by the sample",
)
registered_model = ml_client.models.create_or_update(model)
summary["model_id"] = registered_model.id

# an online endpoint and a deployment
endpoint = ManagedOnlineEndpoint(name=f"ep-{suffix}", auth_mode="key", description="sample")
ml_client.online_endpoints.begin_create_or_update(endpoint).result()
blue = ManagedOnlineDeployment(
    name="blue",
    endpoint_name=endpoint.name,
    model=registered_model,
    code_configuration=CodeConfiguration(code="./onlinescoring", scoring_script="score.py"),
    environment=env,
    instance_type="Standard_DS2_v2",
    instance_count=1,
)
made = ml_client.online_deployments.begin_create_or_update(blue).result()
summary["deployment_state"] = made.provisioning_state
endpoint.traffic = {"blue": 100}
ml_client.online_endpoints.begin_create_or_update(endpoint).result()
fetched = ml_client.online_endpoints.get(name=endpoint.name)
summary["traffic"] = fetched.traffic
summary["scoring_uri"] = fetched.scoring_uri
summary["key_length"] = len(ml_client.online_endpoints.get_keys(name=endpoint.name).primary_key)
summary["prediction"] = json.loads(
    ml_client.online_endpoints.invoke(
        endpoint_name=endpoint.name, request_file="sample-request.json", deployment_name="blue"
    )
)
# scale out by changing the answered deployment and sending it back
current = ml_client.online_deployments.get(name="blue", endpoint_name=endpoint.name)
current.instance_count = 2
scaled = ml_client.online_deployments.begin_create_or_update(current).result()
summary["instances"] = scaled.instance_count

# a batch endpoint with a deployment in the current schema
batch_endpoint = BatchEndpoint(name=f"be-{suffix}", description="sample batch")
ml_client.batch_endpoints.begin_create_or_update(batch_endpoint).result()
batch_deployment = ModelBatchDeployment(
    name="scorer",
    endpoint_name=batch_endpoint.name,
    model=registered_model,
    code_configuration=CodeConfiguration(code="./onlinescoring", scoring_script="batch_score.py"),
    environment=env,
    compute=ci.name,
    settings=ModelBatchDeploymentSettings(
        max_concurrency_per_instance=2,
        mini_batch_size=1,
        output_action=BatchDeploymentOutputAction.APPEND_ROW,
        output_file_name="predictions.csv",
        retry_settings=BatchRetrySettings(max_retries=1, timeout=60),
        logging_level="info",
    ),
)
ml_client.batch_deployments.begin_create_or_update(batch_deployment).result()
batch_endpoint = ml_client.batch_endpoints.get(batch_endpoint.name)
batch_endpoint.defaults.deployment_name = batch_deployment.name
ml_client.batch_endpoints.begin_create_or_update(batch_endpoint).result()
summary["batch_default"] = ml_client.batch_endpoints.get(batch_endpoint.name).defaults.deployment_name
batch_job = ml_client.batch_endpoints.invoke(
    endpoint_name=batch_endpoint.name,
    input=Input(type=AssetTypes.URI_FOLDER, path="./batch-data"),
)
ml_client.jobs.stream(batch_job.name, out=sys.stderr)
ml_client.jobs.download(name=batch_job.name, download_path="./results", output_name="score")
with open("./results/named-outputs/score/predictions.csv") as fh:
    summary["batch_rows"] = sorted(fh.read().split())

# clean up as the samples do
ml_client.online_endpoints.begin_delete(name=endpoint.name).result()
ml_client.batch_endpoints.begin_delete(name=batch_endpoint.name).result()
ml_client.compute.begin_delete(ci.name).result()
summary["endpoints_left"] = [e.name for e in ml_client.online_endpoints.list()]
print(json.dumps(summary))
