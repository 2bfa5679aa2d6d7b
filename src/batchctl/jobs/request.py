"""A job as a front end asks for it: the typed `JobRequest` that `api.submit_job` takes.

Each front end builds one in a single place: the command line's words (flags, `--set` strings, an
invocation file) with `JobRequest.from_words`, REST's body in `server/rest.submit_request`, the Studio's
Create job form in `server/studio/forms.job_options`, a rerun in `jobs/commands`. A job setting is a
field of `specs/job.RunOverrides`; see docs/architecture.md, "Adding a job setting"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import SpecError
from batchctl.specs import load as spec_load
from batchctl.specs.job import InvocationSpec, RunOverrides

if TYPE_CHECKING:
    from batchctl.jobs.model import DeploymentSnapshot

INPUT_TYPES = (None, "uri_file", "uri_folder")


@dataclass
class JobRequest:
    """A job as a front end asks for it, typed: every field is still unchecked against the workspace."""

    endpoint: str
    input: str
    deployment: str | None = None
    input_type: str | None = None
    output_path: str | None = None
    job_name: str | None = None
    experiment_name: str | None = None
    overrides: RunOverrides = field(default_factory=RunOverrides)
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    files_subset: list[str] | None = None  # rerun: only these files of the input folder
    rerun_of: str | None = None
    tracking_uri: str | None = None  # --tracking-uri (else MLFLOW_TRACKING_URI, else the workspace's settings.json)
    log_predictions: bool = False
    # a rerun pins the first job's model version and code snapshot, whatever the deployment uses now
    pinned: tuple[str, DeploymentSnapshot] | None = None
    env_manager: str | None = None  # --env-manager auto|local|uv (else the deployment's, settings.json, auto)
    env_strict: bool = False
    env_constraints: list[str] = field(default_factory=list)

    def check(self) -> None:
        """What needs no workspace: an endpoint is named, the input type is known, the names are valid."""
        if not self.endpoint:
            raise SpecError("no endpoint to invoke", "name it: `batchctl endpoint invoke -n <endpoint-name>`")
        if self.input_type not in INPUT_TYPES:
            raise SpecError(f"--input-type: '{self.input_type}' is not supported; use uri_file or uri_folder")
        if self.job_name is not None:
            spec_load.validate_name("job", self.job_name)
        if self.experiment_name is not None:
            spec_load.validate_name("job", self.experiment_name)

    @classmethod
    def from_words(
        cls,
        *,
        endpoint: str | None = None,
        deployment: str | None = None,
        input: str | None = None,
        input_type: str | None = None,
        output_path: str | None = None,
        job_name: str | None = None,
        experiment_name: str | None = None,
        settings: Mapping[str, Any] | None = None,
        sets: Iterable[str] = (),
        file: str | None = None,
        tags: Iterable[str] = (),
        tracking_uri: str | None = None,
        log_predictions: bool = False,
        env_manager: str | None = None,
        env_strict: bool = False,
        env_constraints: Iterable[str] = (),
    ) -> JobRequest:
        """The command line's words as one typed request: `settings` are the setting flags by RunOverrides
        field (`-m`, `-c`, `--split`...), `sets` the `--set key=value` strings, `file` an invocation YAML.
        Precedence: flags > `--set` > the invocation file > the deployment."""
        set_overrides, io_sets = split_sets(sets)
        overrides = spec_load.validate_data(RunOverrides, dict(settings or {}), "options").over(set_overrides)
        words: dict[str, Any] = {
            "endpoint": endpoint,
            "deployment": deployment,
            "input": input,
            "input_type": input_type,
            "output_path": output_path,
            "job_name": job_name,
            "experiment_name": experiment_name,
        }
        file_tags: dict[str, str] = {}
        description = None
        if file is not None:
            inv = spec_load.load_spec("job", InvocationSpec, file)
            _fill_from_file(words, inv)
            overrides = overrides.over(inv.overrides())
            file_tags, description = dict(inv.tags), inv.description
        _fill_from_sets(words, io_sets)
        _check_words(words, file)
        request = cls(
            **words,
            overrides=overrides,
            description=description,
            tracking_uri=tracking_uri,
            log_predictions=log_predictions,
            env_manager=env_manager,
            env_strict=env_strict,
            env_constraints=list(env_constraints),
        )
        request.check()
        request.tags = {**file_tags, **parse_tags(tags)}  # read last, as before the request was typed
        return request


def _fill_from_file(words: dict[str, Any], inv: InvocationSpec) -> None:
    """What the invocation file names and the command line left out."""
    words["endpoint"] = words["endpoint"] or inv.endpoint
    words["deployment"] = words["deployment"] or inv.deployment
    words["job_name"] = words["job_name"] or inv.name
    words["experiment_name"] = words["experiment_name"] or inv.experiment_name
    if inv.inputs and words["input"] is None:
        (only,) = inv.inputs.values()
        words["input"], words["input_type"] = only.path, words["input_type"] or only.type
    if "score" in inv.outputs and inv.outputs["score"].path and words["output_path"] is None:
        words["output_path"] = inv.outputs["score"].path


def _fill_from_sets(words: dict[str, Any], io_sets: dict[str, str]) -> None:
    """Azure's `--set inputs.<n>.path/type=...` and `--set outputs.score.path=...`."""
    for key, value in io_sets.items():
        section, _, leaf = key.split(".")
        if section == "inputs":
            words["input" if leaf == "path" else "input_type"] = value
        elif leaf == "path":
            words["output_path"] = value


def _check_words(words: dict[str, Any], file: str | None) -> None:
    if not words["endpoint"]:
        # `job create -f` has no endpoint option (its -n is the job's name): the file names the endpoint
        if file is not None:
            raise SpecError(
                f"{Path(file).name}: no endpoint to invoke: add `endpoint: <endpoint-name>` to the file",
                f"or name it on the command line: `batchctl endpoint invoke -n <endpoint-name> -f {file}`",
            )
        raise SpecError("no endpoint to invoke", "name it: `batchctl endpoint invoke -n <endpoint-name>`")
    if words["input_type"] not in INPUT_TYPES:
        raise SpecError(f"--input-type: '{words['input_type']}' is not supported; use uri_file or uri_folder")
    if words["input"] is None:
        raise SpecError("--input is required (a file, folder, URL, datastore path or azureml:<data>@latest)")


def split_sets(overrides: Iterable[str]) -> tuple[RunOverrides, dict[str, str]]:
    """--set for invoke: run overrides plus Azure's inputs.<n>.path/type and outputs.score.path."""
    data: dict[str, Any] = {}
    io_sets: dict[str, str] = {}
    plain = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SpecError(f"--set: '{item}' must look like key=value")
        key = key.strip()
        parts = key.split(".")
        if parts[0] in ("inputs", "outputs") and len(parts) == 3 and parts[2] in ("path", "type"):
            io_sets[key] = value
        else:
            plain.append(f"{key}={value}")
    spec_load.apply_overrides(data, plain)
    return spec_load.validate_data(RunOverrides, data, "--set"), io_sets


def typed_overrides(options: Mapping[str, Any], sets: Mapping[str, Any]) -> RunOverrides:
    """Settings a front end read itself (REST's body, the Studio's form) as RunOverrides: `options` (the
    fields `endpoint invoke` has flags for) over `sets` (the rest, nested as `--set` nests them). A bad
    value reads as the command line's would (`options: mini_batch_size: ...`, `--set: error_threshold: ...`)."""
    base = spec_load.validate_data(RunOverrides, dict(sets), "--set")  # checked first, as on the command line
    return spec_load.validate_data(RunOverrides, dict(options), "options").over(base)


def parse_tags(pairs: Iterable[str], option: str = "--tags") -> dict[str, str]:
    """`k=v` strings as a dict (a value may hold `=`; the key may not be empty)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"{option}: '{pair}' must look like key=value")
        out[key.strip()] = value
    return out
