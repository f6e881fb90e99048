#!/usr/bin/env bash
# Command lines as Azure ML's sample scripts write them, run unchanged but for `az`:
# the test defines az() so that `az ml <noun> <verb> …` runs `lapis <noun> <verb> …`.
set -euo pipefail
cd "$(dirname "$0")"

ENDPOINT_NAME="${ENDPOINT_NAME:-compat-endpoint}"

# <create_endpoint>
az ml online-endpoint create --name $ENDPOINT_NAME -f online/endpoint.yml
# <create_deployment>
az ml online-deployment create --name folder --endpoint $ENDPOINT_NAME -f online/folder.yml --all-traffic

# <get_status>
az ml online-endpoint show -n $ENDPOINT_NAME
az ml online-endpoint show -n $ENDPOINT_NAME --web --query name -o tsv
STATE=$(az ml online-endpoint show -n $ENDPOINT_NAME --query "provisioning_state" -o tsv)
echo "endpoint state: $STATE"
DEPLOY_STATE=$(az ml online-deployment show --name folder --endpoint-name $ENDPOINT_NAME --query "provisioning_state" -o tsv)
if [[ $DEPLOY_STATE != "Succeeded" ]]; then
  az ml online-deployment get-logs --name folder --endpoint $ENDPOINT_NAME
  exit 1
fi

# <test_endpoint>
az ml online-endpoint invoke --name $ENDPOINT_NAME --request-file online/sample-request.json
az ml online-endpoint invoke --name $ENDPOINT_NAME --deployment-name folder --request-file online/sample-request.json

# <test_endpoint_using_curl>
SCORING_URI=$(az ml online-endpoint show -n $ENDPOINT_NAME -o tsv --query scoring_uri)
ENDPOINT_KEY=$(az ml online-endpoint get-credentials -n $ENDPOINT_NAME -o tsv --query primaryKey)
curl --silent --fail -H "Authorization: Bearer $ENDPOINT_KEY" -H "Content-Type: application/json" \
  --data @online/sample-request.json "$SCORING_URI"
echo

# <scale_deployment>
az ml online-deployment update --name folder --endpoint-name $ENDPOINT_NAME --set instance_count=2
TRAFFIC=$(az ml online-endpoint show -n $ENDPOINT_NAME --query "traffic.folder" -o tsv)
echo "traffic to folder: $TRAFFIC"

# <update_endpoint>
az ml online-endpoint update --name $ENDPOINT_NAME --set description="scores the sample" --set tags.team=ml
echo "description: $(az ml online-endpoint show -n $ENDPOINT_NAME --query description -o tsv)"
echo "team: $(az ml online-endpoint show -n $ENDPOINT_NAME --query tags.team -o tsv)"

# <list>
az ml online-endpoint list --query "[].{name:name, state:provisioning_state}" -o table > /dev/null
az ml online-deployment list --endpoint-name $ENDPOINT_NAME --query "[].name" -o tsv

# <delete_endpoint>
az ml online-endpoint delete --name $ENDPOINT_NAME --yes --no-wait
