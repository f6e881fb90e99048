#!/usr/bin/env bash
# Batch scoring as Azure ML's sample scripts drive it, run unchanged but for `az`
# (the test defines az() so that `az ml …` runs `lapis …`).
set -euo pipefail
cd "$(dirname "$0")"

ENDPOINT_NAME="${ENDPOINT_NAME:-compat-batch}"

# <create_batch_endpoint>
az ml batch-endpoint create --name $ENDPOINT_NAME -f batch/endpoint.yml
# <create_batch_deployment_set_default>
az ml batch-deployment create --file batch/deployment-settings.yml --endpoint-name $ENDPOINT_NAME --set-default
az ml batch-endpoint show --name $ENDPOINT_NAME --web --query defaults.deployment_name -o tsv

# <start_batch_scoring_job>
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --input batch/data --input-type uri_folder --query name -o tsv)
echo "job: $JOB_NAME"
az ml job show -n $JOB_NAME --web --query status -o tsv
# <stream_job_logs_to_console>
az ml job stream -n $JOB_NAME
STATUS=$(az ml job show -n $JOB_NAME --query status -o tsv)
echo "status: $STATUS"
if [[ $STATUS != "Completed" ]]; then
  exit 2
fi
# <list_all_jobs>
az ml batch-deployment list-jobs --name tripler-settings --endpoint-name $ENDPOINT_NAME --query "[].name" -o tsv
# <download_outputs>
az ml job download --name $JOB_NAME --output-name score --download-path ./out
cat ./out/named-outputs/score/tripled.csv

# <delete_endpoint>
az ml batch-endpoint delete --name $ENDPOINT_NAME --yes
