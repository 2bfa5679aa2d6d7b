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
batchctl data create -f heart-unlabeled.yml --query "{name: name, version: version, type: type}" -o table

# --- scoring (endpoint invoke) ---

step "start a batch scoring job on the default deployment (input: the registered data asset)"
job="$(batchctl endpoint invoke -n heart-classifier --input azureml:heart-unlabeled@latest --query name -o tsv)"
echo "job: $job"

step "check the job: status, counts, where the results are"
batchctl job show -n "$job" \
    --query "{status: status, files: counts.files, mini_batches: counts.mini_batches, items_succeeded: counts.items_succeeded, output_file: output_file}" -o table

step "download the results (to .demo/download/named-outputs/score/) and show a few predictions"
batchctl job download -n "$job" --output-name score --download-path "$ROOT/.demo/download" -o none
echo "predictions: $ROOT/.demo/download/named-outputs/score/predictions.csv (row,prediction,file_name)"
head -n 5 "$ROOT/.demo/download/named-outputs/score/predictions.csv"

step "add a second deployment: the custom scoring script (batch_driver.py)"
batchctl deployment create -f deployment-custom/deployment.yml \
    --query "{name: name, scoring_script: code_configuration.scoring_script}" -o table

step "invoke that deployment with overridden settings, a local folder as input and an output folder of our own"
job2="$(batchctl endpoint invoke -n heart-classifier --deployment-name classifier-custom \
    --input data --mini-batch-size 1 --output-path "$ROOT/.demo/custom-output" \
    --set output_file_name=custom.csv --query name -o tsv)"
echo "job: $job2 -> $ROOT/.demo/custom-output/custom.csv"
head -n 3 "$ROOT/.demo/custom-output/custom.csv"

step "the same output again is refused: batchctl never overwrites results"
if batchctl endpoint invoke -n heart-classifier -d classifier-custom --input data \
    --output-path "$ROOT/.demo/custom-output" --set output_file_name=custom.csv -o none; then
    echo "expected a refusal" >&2; exit 1
fi

step "list the endpoint's runs"
batchctl endpoint list-jobs -n heart-classifier \
    --query "[].{name: name, deployment: deployment_name, status: status, files: counts.files}" -o table

step "make the custom deployment the default"
batchctl deployment set-default -e heart-classifier -n classifier-custom --query defaults -o table

step "delete the endpoint (its deployments go with it; its jobs stay listed)"
batchctl endpoint delete -n heart-classifier --yes -o none
batchctl job list --query "length(@)" -o tsv | xargs echo "jobs still listed:"

step "done"
echo "workspace: $BATCHCTL_HOME"
