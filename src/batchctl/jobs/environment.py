"""A job's environment: chosen at submit (what the deployment names, with `--env-manager`, `--env-strict`
and `--env-constraint`), then made ready by the runner before any worker starts.

The manager: `--env-manager` > the deployment's `batchctl.env_manager` property > `env_manager` in the
workspace's settings.json > `auto`. `local` scores in this interpreter; `uv` always in the isolated
environment; `auto` in this interpreter when it already satisfies every requirement, else isolated."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.envs import build as env_build
from batchctl.envs.manage import check_manager, unsatisfied
from batchctl.envs.spec import Change, EnvSpec
from batchctl.errors import EnvironmentBuildError, SpecError
from batchctl.notices import notify
from batchctl.workspace import SETTINGS_FILE, Workspace, workspace_setting

if TYPE_CHECKING:
    from batchctl.resources.records import DeploymentRecord

MANAGER_PROPERTY = "batchctl.env_manager"
STRICT_PROPERTY = "batchctl.env_strict"
CONSTRAINTS_PROPERTY = "batchctl.env_constraints"


def envs_root(ws: Workspace) -> Path:
    return ws.root / "envs"


def workspace_manager(ws: Workspace) -> str | None:
    value = workspace_setting(ws, "env_manager")
    return check_manager(str(value), f"{ws.root / SETTINGS_FILE}: env_manager") if value is not None else None


def split_constraints(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").replace(";", ",").split(",") if c.strip()]


def plan(
    ws: Workspace,
    deployment: DeploymentRecord,
    model_path: str,
    model_type: str,
    scripted: bool,
    manager: str | None = None,
    strict: bool = False,
    constraints: Iterable[str] = (),
    ray: bool = False,
) -> dict[str, Any] | None:
    """What the job's record says about its environment (None: the deployment names none, and a custom
    deployment then runs in this interpreter as it always did). `ray`: the job runs on a Ray compute, whose
    workers need the driver's ray inside the environment."""
    from batchctl.resources.environments import deployment_env_spec

    props = deployment.properties
    if manager is not None:
        check_manager(manager, "--env-manager")
    elif props.get(MANAGER_PROPERTY):
        manager = check_manager(str(props[MANAGER_PROPERTY]), f"deployment property {MANAGER_PROPERTY}")
    else:
        manager = workspace_manager(ws) or "auto"
    strict = strict or str(props.get(STRICT_PROPERTY, "")).lower() in ("1", "true", "yes")
    cons = list(constraints) + split_constraints(props.get(CONSTRAINTS_PROPERTY))
    spec = deployment_env_spec(ws, deployment, model_path, model_type)
    if spec is None:
        return None
    spec = spec.with_worker("script" if scripted else "mlflow", tuple(cons))
    if ray and manager != "local":
        spec = for_ray(spec)
    if strict and spec.skipped and manager != "local":
        raise EnvironmentBuildError(
            "--env-strict: the environment would need " + "; ".join(c.line() for c in spec.skipped),
            "drop --env-strict to skip them, or list the packages under pip: in the conda file",
        )
    return {
        "manager": manager,
        "strict": strict,
        **spec.describe(),
        "skipped": [c.as_dict() for c in spec.skipped],
        "key": spec.key,
    }


def rerun_options(env: dict[str, Any] | None) -> dict[str, Any]:
    """What a rerun keeps of the job it reruns (its record's `environment`): the manager it resolved, its
    strictness and its constraints, as JobRequest fields."""
    if not env:
        return {}
    return {
        "env_manager": env.get("manager"),
        "env_strict": bool(env.get("strict")),
        "env_constraints": list(env.get("constraints") or ()),
    }


def for_ray(spec: EnvSpec) -> EnvSpec:
    """The spec with the driver's ray release for Ray workers (unchanged when ray is not installed here:
    the job then fails on the missing extra, with its own line)."""
    from importlib import metadata

    try:
        version = metadata.version("ray")
    except metadata.PackageNotFoundError:
        return spec
    return spec.with_ray(version)


def spec_of(env: dict[str, Any]) -> EnvSpec:
    return EnvSpec(
        source=env["source"],
        python=env.get("python_requested"),
        requirements=tuple(env.get("requirements") or ()),
        worker=tuple(env.get("worker_packages") or ()),
        constraints=tuple(env.get("constraints") or ()),
        skipped=tuple(Change(**c) for c in env.get("skipped") or ()),
        worker_code=env.get("worker_code", True) is not False,
    )


def prepare(
    ws: Workspace,
    env: dict[str, Any] | None,
    compute_type: str,
    log: Callable[[str], None],
    address: str | None = None,
) -> tuple[env_build.BuiltEnv | None, dict[str, Any] | None]:
    """(the isolated environment to start workers in, or None for this interpreter; the record's
    `environment` with what was used). Builds at most once per key; raises EnvironmentBuildError.
    `address`: a Ray compute's; its workers use the environment only when that Ray runs on this machine."""
    if env is None:
        return None, None
    spec = spec_of(env)
    out = dict(env)
    for change in spec.skipped:
        log(f"environment: {change.line()}")
    if env["manager"] == "local":
        out["used"] = "local"
        log("environment: --env-manager local: scoring in batchctl's interpreter")
        return None, out
    if env["manager"] == "auto":
        missing = unsatisfied(spec.requirements)
        if not missing:
            out["used"] = "local"
            log(f"environment: this interpreter satisfies every requirement of {spec.source}; no build")
            return None, out
        out["unsatisfied"] = missing
        log(f"environment: this interpreter lacks {', '.join(missing[:5])}: an isolated environment is used")
    if compute_type == "ray":
        spec = _ray_spec(spec, address, out)
    built = env_build.ensure(envs_root(ws), spec, bool(env.get("strict")), log)
    substituted = [c for c in built.changes if c.kind != "era"]
    if env.get("strict") and substituted:  # built earlier without --env-strict: its substitutions stand
        raise EnvironmentBuildError(
            "--env-strict: the environment would need " + "; ".join(c.line() for c in substituted),
            "drop --env-strict to accept these substitutions, or pin releases that install here",
        )
    log(
        f"environment {built.key[:12]}: {'built' if built.built else 'reused'} {built.path}; "
        f"build log {built.build_log}"
    )
    for change in built.changes:
        log(f"environment: {change.line()}")
        notify(f"environment {built.key[:12]}: {change.line()}")
    out.update(used="isolated", **built.record())
    return built, out


def _ray_spec(spec: EnvSpec, address: str | None, out: dict[str, Any]) -> EnvSpec:
    """The spec a Ray job's environment is built from (the driver's ray in it; `out` gets its packages and
    key); refuses a Ray instance on another machine, where an environment built here does not exist."""
    from batchctl.execution.ray import runs_here

    if not runs_here(address):
        raise EnvironmentBuildError(
            f"the Ray cluster at '{address}' is not on this machine, so its workers cannot start in the "
            f"isolated environment this job needs for {spec.source} (it is built here, on this machine)",
            "use --env-manager local to score in batchctl's interpreter, or a compute whose Ray instance runs on "
            "this machine (--address local)",
        )
    spec = for_ray(spec)
    out.update(worker_packages=list(spec.worker), constraints=list(spec.constraints), key=spec.key)
    return spec


def worker_path(ws: Workspace, built: env_build.BuiltEnv) -> tuple[str, ...]:
    """The sys.path of a worker in `built`: batchctl's package alone, then the environment's own paths."""
    return (env_build.worker_shim(envs_root(ws)), *built.sys_path)


def override(env: dict[str, Any], manager: str | None, strict: bool, constraints: list[str]) -> dict[str, Any]:
    """A resumed job's environment with `job resume --env-manager/--env-strict/--env-constraint` laid over
    it (new constraints make a new key). What the last attempt used is cleared."""
    out = {
        k: v
        for k, v in env.items()
        if k
        in (
            "manager",
            "strict",
            "source",
            "python_requested",
            "requirements",
            "worker_packages",
            "constraints",
            "skipped",
            "key",
            "worker_code",
        )
    }
    if manager is not None:
        out["manager"] = check_manager(manager, "--env-manager")
    if strict:
        out["strict"] = True
    if constraints:
        spec = spec_of(out).with_worker_constraints(tuple(constraints))
        out.update(constraints=list(spec.constraints), key=spec.key)
    return out


def build_registered(
    ws: Workspace, name: str, version: str | None, strict: bool, constraints: Iterable[str], log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """`environment build`: build a registered environment ahead of time, as Azure builds the image at
    deployment time, once for each kind of deployment that uses it (a scoring script, or the built-in MLflow
    scorer, which adds its own packages); for a scoring script when none uses it yet."""
    from batchctl.envs import spec as env_spec
    from batchctl.resources.environments import get_environment

    record = get_environment(ws, name, version)
    if not record.get("conda_file"):
        raise SpecError(f"environment {record['id']} has no conda file: there is nothing to build here")
    base = env_spec.from_conda_file(Path(record["conda_file"]), f"environment {record['id']}")
    if strict and base.skipped:
        raise EnvironmentBuildError(
            "--env-strict: the environment would need " + "; ".join(c.line() for c in base.skipped),
            "drop --env-strict to skip them, or list the packages under pip: in the conda file",
        )
    out = []
    for kind, on_ray in _kinds_using(ws, record["id"]):
        spec = base.with_worker(kind, tuple(constraints))
        spec = for_ray(spec) if on_ray else spec
        built = env_build.ensure(envs_root(ws), spec, strict, log)
        substituted = [c for c in built.changes if c.kind != "era"]
        if strict and substituted:
            raise EnvironmentBuildError(
                "--env-strict: the environment would need " + "; ".join(c.line() for c in substituted),
                "drop --env-strict to accept these substitutions, or pin releases that install here",
            )
        out.append(
            {
                "environment": record["id"],
                "for": f"{kind} on ray" if on_ray else kind,
                "skipped": [c.as_dict() for c in base.skipped],
                **built.record(),
            }
        )
    return out


def _kinds_using(ws: Workspace, env_id: str) -> list[tuple[str, bool]]:
    """(scorer kind, on a Ray instance of this machine) of each deployment naming `env_id`: a Ray job's
    environment also holds the driver's ray, so it is another build. A scoring script when none uses it."""
    from batchctl.execution.ray import runs_here

    state = ws.store.read()
    kinds = set()
    for d in state["deployments"].values():
        if d.get("environment") != env_id:
            continue
        compute = (state.get("computes") or {}).get(d.get("compute") or "") or {}
        on_ray = compute.get("type") == "ray" and runs_here(compute.get("address"))
        kinds.add(("script" if (d.get("code_configuration") or {}).get("code") else "mlflow", on_ray))
    return sorted(kinds) or [("script", False)]


def builds_of(ws: Workspace, env_id: str | None = None) -> list[dict[str, Any]]:
    """The builds kept under `<workspace>/envs/` (only those made from `env_id` when given)."""
    from batchctl.envs.manage import list_builds

    builds = list_builds(envs_root(ws))
    if env_id is not None:
        builds = [b for b in builds if b["source"] == f"environment {env_id}"]
    return builds


def prune_builds(ws: Workspace, unused_days: float) -> dict[str, Any]:
    from batchctl.envs.manage import prune

    if unused_days < 0:
        raise SpecError("--unused-days: must be 0 or more")
    return prune(envs_root(ws), unused_days)
