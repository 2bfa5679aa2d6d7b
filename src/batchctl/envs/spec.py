"""An environment spec, normalised: a Python version request and a sorted list of requirements.

Where it comes from (the callers above pick the source; this module only reads files):
- a conda file (a registered environment's, or an inline `image` + `conda_file`): `python=X.Y.Z`, the
  `pip:` list; every other conda package and the Azure-only packages are skipped with a notice;
- an MLflow model's own files, in MLflow's order: `python_env.yaml` + `requirements.txt`, else `conda.yaml`.

The sha256 of the canonical form is the environment's key: the order in which a file lists its
dependencies does not change it."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from batchctl.errors import EnvironmentBuildError, SpecError

# packages that do nothing outside Azure (the docs of each say so): skipped, with a notice
AZURE_ONLY = frozenset(
    {
        "azureml-core",
        "azureml-defaults",
        "azureml-mlflow",
        "azureml-dataset-runtime",
        "azureml-inference-server-http",
    }
)
# conda packages that are the interpreter or its installer, not a dependency to install
CONDA_TOOLING = frozenset({"python", "pip", "setuptools", "wheel"})
# what batchctl's own worker imports, per scorer kind (added unless the user names the package)
WORKER_PACKAGES: dict[str, tuple[str, ...]] = {
    "mlflow": ("pandas", "pyarrow", "fsspec", "mlflow-skinny"),
    "script": (),
}
# one of these named by the user satisfies the worker's need for the key (full mlflow ships mlflow-skinny's code)
_SATISFIED_BY = {"mlflow-skinny": ("mlflow-skinny", "mlflow")}
KEY_VERSION = 1


def canonical_name(name: str) -> str:
    """PEP 503's normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Change:
    """One thing batchctl could not give as asked: skipped, relaxed or substituted (recorded in the job)."""

    kind: str  # "skipped" | "relaxed" | "python"
    requested: str
    used: str | None
    reason: str

    def line(self) -> str:
        if self.kind == "skipped":
            return f"skipped {self.requested}: {self.reason}"
        return f"{self.requested} -> {self.used}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "requested": self.requested, "used": self.used, "reason": self.reason}


@dataclass(frozen=True)
class EnvSpec:
    """What to build. `requirements` are the user's (sorted, normalised); `worker` are what batchctl's
    worker adds; `constraints` narrow the resolution without adding packages."""

    source: str  # where it came from, for people ("environment azureml:heart-env:1", "model files conda.yaml")
    python: str | None
    requirements: tuple[str, ...]
    worker: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    skipped: tuple[Change, ...] = field(default=(), compare=False)
    # False: nothing of batchctl runs inside (a pipeline step runs its component's command), so the Python
    # the file asks for may be older than the worker's 3.11 (envs/build.choose_python)
    worker_code: bool = True

    def with_worker(self, kind: str, constraints: tuple[str, ...] = ()) -> EnvSpec:
        """The spec plus the packages batchctl's worker needs for a `kind` scorer, unless the user named
        them (the user's pins win), and the job's constraints."""
        named = {requirement_name(r) for r in self.requirements}
        worker = tuple(
            p for p in WORKER_PACKAGES.get(kind, ()) if not any(n in named for n in _SATISFIED_BY.get(p, (p,)))
        )
        cons = tuple(sorted({normalise(c, "constraint") for c in constraints}))
        return replace(self, worker=worker, constraints=cons)

    def with_ray(self, version: str) -> EnvSpec:
        """The spec for Ray workers: Ray starts each actor with the environment's interpreter, which must
        import the driver's own Ray release. `ray==<version>` is added to the worker packages; when the
        user names ray, their requirement stays and a constraint pins the release, and a requirement
        that excludes the driver's release is refused (exit 13). Idempotent."""
        from packaging.requirements import Requirement

        pin = f"ray=={version}"
        named = [r for r in self.requirements if requirement_name(r) == "ray"]
        for text in named:
            if not Requirement(text).specifier.contains(version, prereleases=True):
                raise EnvironmentBuildError(
                    f"{self.source} requires {text}, but this job's Ray workers need ray {version} "
                    "(the release of the driver, batchctl's own interpreter)",
                    f"pin ray=={version} in the environment, or run the job with --env-manager local",
                )
        if named:
            return replace(self, constraints=tuple(sorted({*self.constraints, pin})))
        if pin in self.worker:
            return self
        worker = tuple(w for w in self.worker if requirement_name(w) != "ray")
        return replace(self, worker=(*worker, pin))

    def with_worker_constraints(self, constraints: tuple[str, ...]) -> EnvSpec:
        """The spec with `constraints` added to its own."""
        cons = tuple(sorted({*self.constraints, *(normalise(c, "constraint") for c in constraints)}))
        return replace(self, constraints=cons)

    def canonical(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": KEY_VERSION,
            "python": _minor(self.python),
            "requirements": sorted(self.requirements),
            "worker": sorted(self.worker),
            "constraints": sorted(self.constraints),
        }
        if not self.worker_code:  # only then: the keys of worker environments built before stay the same
            out["worker_code"] = False
        return out

    @property
    def key(self) -> str:
        """sha256 of the canonical form: the same requirements in any order give the same key. The Python
        request counts by major.minor (3.8.5 and 3.8.10 are one environment)."""
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "python_requested": self.python,
            "requirements": list(self.requirements),
            "worker_packages": list(self.worker),
            "constraints": list(self.constraints),
            **({} if self.worker_code else {"worker_code": False}),
        }


def _minor(version: str | None) -> str | None:
    if not version:
        return None
    return ".".join(version.split(".")[:2])


def requirement_name(text: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return canonical_name(Requirement(text).name)
    except InvalidRequirement:
        return text


def normalise(text: str, what: str = "requirement") -> str:
    """One requirement as packaging writes it (name normalised, specifiers sorted); a bad one is a SpecError."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(text.strip())
    except InvalidRequirement as exc:
        raise SpecError(f"{what} '{text.strip()}' is not a valid requirement: {exc}") from None
    req.name = canonical_name(req.name)
    return str(req)


def from_requirements(lines: list[str], python: str | None, source: str) -> EnvSpec:
    """pip requirement lines (comments, blanks and options skipped; options with a notice)."""
    reqs: list[str] = []
    skipped: list[Change] = []
    for raw in lines:
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            skipped.append(Change("skipped", line, None, "pip options in a requirements list are not supported"))
            continue
        req = normalise(line)
        name = requirement_name(req)
        if name in AZURE_ONLY:
            skipped.append(Change("skipped", line, None, "Azure-only package, it does nothing locally"))
            continue
        reqs.append(req)
    return EnvSpec(source=source, python=python, requirements=tuple(sorted(set(reqs))), skipped=tuple(skipped))


def from_conda(conda: dict[str, Any], source: str) -> EnvSpec:
    """A conda file: `python` sets the request, the `pip:` list the requirements; other conda packages
    are skipped (there is no conda here)."""
    deps = conda.get("dependencies") or []
    if not isinstance(deps, list):
        raise SpecError(f"{source}: dependencies must be a list")
    python = None
    pip_lines: list[str] = []
    skipped: list[Change] = []
    for dep in deps:
        if isinstance(dep, dict) and "pip" in dep:
            pip = dep["pip"] or []
            if not isinstance(pip, list) or not all(isinstance(p, str) for p in pip):
                raise SpecError(f"{source}: dependencies.pip must be a list of requirement strings")
            pip_lines.extend(pip)
            continue
        if not isinstance(dep, str | int | float):
            raise SpecError(f"{source}: dependency {dep!r} is neither a conda package nor a pip: list")
        text = str(dep).strip()
        bare = text.split("::")[-1]
        match = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", bare)
        name, rest = (match.group(1), match.group(2)) if match else (bare, "")
        version = rest.lstrip("=<>!~ ").split("=")[0].strip() or None
        if canonical_name(name) == "python":
            python = version
            continue
        if canonical_name(name) in CONDA_TOOLING:
            continue
        skipped.append(Change("skipped", text, None, "conda package (no conda here); list it under pip: to install"))
    spec = from_requirements(pip_lines, python, source)
    return replace(spec, skipped=tuple(skipped) + spec.skipped)


def from_mlflow_model(model_path: Path) -> EnvSpec | None:
    """An MLflow model's environment, in MLflow's order: python_env.yaml + requirements.txt, else conda.yaml.
    None when the model records neither."""
    folder = model_path if model_path.is_dir() else model_path.parent
    python_env = folder / "python_env.yaml"
    requirements = folder / "requirements.txt"
    if python_env.is_file() and requirements.is_file():
        data = _yaml(python_env)
        python = data.get("python")
        return from_requirements(
            requirements.read_text().splitlines(),
            str(python) if python is not None else None,
            "model files python_env.yaml + requirements.txt",
        )
    conda = folder / "conda.yaml"
    if conda.is_file():
        return from_conda(_yaml(conda), "model files conda.yaml")
    return None


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping")
    return data


def from_conda_file(path: Path, source: str) -> EnvSpec:
    return from_conda(_yaml(path), source)
