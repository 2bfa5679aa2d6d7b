"""The example every command's `--help` ends with: one command line of the README's tour, with the tour's
names (tests/cli/test_help.py checks that each is in the tour and parses as its command)."""

from __future__ import annotations

from typing import Any

EXAMPLES: dict[str, str] = {
    "": "batchctl endpoint invoke -n heart-classifier --input azureml:heart-unlabeled@latest",
    "serve": "batchctl serve",
    "token": "batchctl token --query accessToken -o tsv",
    "endpoint": "batchctl endpoint create -f endpoint.yml",
    "endpoint create": "batchctl endpoint create -f endpoint.yml",
    "endpoint update": "batchctl endpoint update -n heart-classifier --set defaults.deployment_name=classifier-custom",
    "endpoint show": "batchctl endpoint show -n heart-classifier",
    "endpoint list": "batchctl endpoint list",
    "endpoint delete": "batchctl endpoint delete -n heart-classifier --yes",
    "endpoint invoke": "batchctl endpoint invoke -n heart-classifier --input azureml:heart-unlabeled@latest",
    "endpoint list-jobs": "batchctl endpoint list-jobs -n heart-classifier",
    "component": "batchctl component create -f hello-component/hello.yml",
    "component create": "batchctl component create -f hello-component/hello.yml",
    "component show": "batchctl component show -n hello_batch",
    "component list": "batchctl component list",
    "component delete": "batchctl component delete -n hello_batch --version 1 --yes",
    "deployment": "batchctl deployment create -f deployment-mlflow/deployment.yml --set-default",
    "deployment create": "batchctl deployment create -f deployment-mlflow/deployment.yml --set-default",
    "deployment update": "batchctl deployment update -n classifier-mlflow -e heart-classifier "
    "--set settings.mini_batch_size=5",
    "deployment show": "batchctl deployment show -n classifier-mlflow -e heart-classifier",
    "deployment list": "batchctl deployment list -e heart-classifier",
    "deployment delete": "batchctl deployment delete -n classifier-mlflow -e heart-classifier --yes",
    "deployment set-default": "batchctl deployment set-default -e heart-classifier -n classifier-custom",
    "deployment list-jobs": "batchctl deployment list-jobs -n classifier-mlflow -e heart-classifier",
    "job": "batchctl job show -n <job>",
    "job invoke": "batchctl job invoke --endpoint heart-classifier --input ./data",
    "job create": "batchctl job create -f job.yml",
    "job list": "batchctl job list --status Failed",
    "job show": "batchctl job show -n <job>",
    "job cancel": "batchctl job cancel -n <job>",
    "job download": "batchctl job download -n <job> --output-name score --download-path .",
    "job rerun": "batchctl job rerun -n <job> --failed-only",
    "job resume": "batchctl job resume -n <job>",
    "job errors": "batchctl job errors -n <job>",
    "job verify": "batchctl job verify -n <job>",
    "job stream": "batchctl job stream -n <job>",
    "model": "batchctl model create --name heart-classifier --type mlflow_model --path ./model",
    "model create": "batchctl model create --name heart-classifier --type mlflow_model --path ./model",
    "model show": "batchctl model show -n heart-classifier",
    "model list": "batchctl model list",
    "model delete": "batchctl model delete -n heart-classifier --version 1 --yes",
    "data": "batchctl data create -f heart-unlabeled.yml",
    "data create": "batchctl data create -f heart-unlabeled.yml",
    "data show": "batchctl data show -n heart-unlabeled",
    "data list": "batchctl data list",
    "data delete": "batchctl data delete -n heart-unlabeled --version 1 --yes",
    "datastore": "batchctl datastore create -f blobds.yml",
    "datastore create": "batchctl datastore create -f blobds.yml",
    "datastore show": "batchctl datastore show -n workspaceblobstore",
    "datastore list": "batchctl datastore list",
    "datastore delete": "batchctl datastore delete -n blobds --yes",
    "compute": "batchctl compute create -n my-ray --type ray --address local",
    "compute create": "batchctl compute create -n my-ray --type ray --address local",
    "compute show": "batchctl compute show -n local",
    "compute list": "batchctl compute list",
    "compute delete": "batchctl compute delete -n my-ray --yes",
    "environment": "batchctl environment list",
    "environment create": "batchctl environment create -n batch-mlflow-sklearn --image python:3.11-slim "
    "--conda-file deployment-custom/environment/conda.yaml",
    "environment build": "batchctl environment build -n batch-mlflow-sklearn",
    "environment builds": "batchctl environment builds",
    "environment prune": "batchctl environment prune --unused-days 30",
    "environment show": "batchctl environment show -n batch-mlflow-sklearn",
    "environment list": "batchctl environment list",
    "environment delete": "batchctl environment delete -n batch-mlflow-sklearn --version 1 --yes",
}


def epilog(path: str) -> str | None:
    """The help's last paragraph for the command `path` ("job show"; "" for batchctl itself); `\\b` keeps
    click's formatter from re-wrapping the command line."""
    example = EXAMPLES.get(path)
    return f"Example:\n\n\b\n  {example}" if example else None


def add_examples(app: Any, path: str) -> None:
    """Give the group `app` (named `path`) and each of its commands its example, unless it has one."""
    if not app.info.epilog:
        app.info.epilog = epilog(path)
    for info in app.registered_commands:
        if not info.epilog:
            info.epilog = epilog(f"{path} {info.name}".strip())
