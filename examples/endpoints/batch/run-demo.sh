#!/usr/bin/env bash
# The Azure ML Studio batch-endpoint workflow, end to end, with batchctl (`make demo` runs it).
# Uses a fresh workspace under <repo>/.demo/ (gitignored, recreated on every run).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PYTHON="${PYTHON:-python}"

export BATCHCTL_HOME="$ROOT/.demo/workspace"
rm -rf "$ROOT/.demo"
mkdir -p "$ROOT/.demo"
cd "$HERE"

step() { printf '\n==> %s\n' "$*"; }

step "train the example model (synthetic data, scikit-learn, saved with MLflow)"
"$PYTHON" train_model.py "$HERE/model"

step "register the model"
batchctl model create --name heart-classifier --type mlflow_model --path "$HERE/model" \
    --query "{name: name, version: version, type: type}" -o table

step "create the endpoint"
batchctl endpoint create -f endpoint.yml --query "{name: name, auth_mode: auth_mode}" -o table

step "create the MLflow (no-code) deployment and make it the default"
batchctl deployment create -f deployment-mlflow/deployment.yml --set-default \
    --query "{name: name, model: model, mini_batch_size: settings.mini_batch_size}" -o table

step "check the endpoint's default deployment"
default_deployment="$(batchctl endpoint show -n heart-classifier --query defaults.deployment_name -o tsv)"
echo "default deployment: $default_deployment"
test "$default_deployment" = "classifier-mlflow"

step "list the endpoint's deployments"
batchctl deployment list -e heart-classifier -o table

step "register the unlabeled data as a data asset"
batchctl data create -f data/heart-unlabeled.yml --query "{name: name, version: version, type: type}" -o table

# --- scoring (endpoint invoke) ---
