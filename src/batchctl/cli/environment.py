"""`batchctl environment`: registered environments (Azure's environment assets, versioned)."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli._assets import DescOpt, FileOpt, LabelOpt, NameOpt, NameReq, VersionOpt, YesOpt, _label
from batchctl.cli._common import SetOpt, command, confirm, workspace

app = typer.Typer(
    no_args_is_help=True,
    help="Registered environments (image, conda file, build context; versioned) and their isolated builds.",
)

ENVIRONMENT_COLUMNS = ("name", "version", "image", "python_version", "created_at")
ImageOpt = Annotated[str | None, typer.Option("--image", "-i", help="Docker image (recorded).")]
CondaOpt = Annotated[str | None, typer.Option("--conda-file", help="Conda YAML; copied into the workspace.")]
BuildOpt = Annotated[
    str | None, typer.Option("--build-context", "-b", help="Docker build context folder; copied into the workspace.")
]
DockerfileOpt = Annotated[
    str | None, typer.Option("--dockerfile-path", help="The Dockerfile inside the build context (Dockerfile).")
]
OsTypeOpt = Annotated[str | None, typer.Option("--os-type", help="linux or windows (recorded).")]


@command(app, "create")
def create(
    file: FileOpt = None,
    name: NameOpt = None,
    version: VersionOpt = None,
    image: ImageOpt = None,
    conda_file: CondaOpt = None,
    build_context: BuildOpt = None,
    dockerfile_path: DockerfileOpt = None,
    os_type: OsTypeOpt = None,
    description: DescOpt = None,
    set_: SetOpt = None,
) -> object:
    """Register an environment version (auto-incremented from 1); the same definition again is a no-op."""
    from batchctl import api

    overrides = list(set_ or []) + ([f"os_type={os_type}"] if os_type else [])
    return api.create_environment(
        workspace(),
        file,
        name=name,
        version=version,
        image=image,
        conda_file=conda_file,
        build_context=build_context,
        dockerfile_path=dockerfile_path,
        description=description,
        overrides=overrides,
    )


@command(app, "show")
def show(name: NameReq, version: VersionOpt = None, label_: LabelOpt = None) -> object:
    """Show an environment version (latest by default), with its builds: key, Python, size, last use, lock file."""
    from batchctl import api

    ws = workspace()
    record = api.get_environment(ws, name, _label(label_, version))
    return {**record, "builds": api.environment_builds(ws, record["id"])}


StrictOpt = Annotated[
    bool, typer.Option("--env-strict", help="Refuse instead of substituting a Python, relaxing a pin or skipping.")
]
ConstraintOpt = Annotated[
    list[str] | None, typer.Option("--env-constraint", help="A constraint for the resolution, e.g. 'numpy<2'.")
]


@command(app, "build")
def build(
    name: NameReq, version: VersionOpt = None, strict: StrictOpt = False, constraint: ConstraintOpt = None
) -> object:
    """Build the environment's isolated virtualenv with uv now (jobs would otherwise build it on first use)."""
    from batchctl import api
    from batchctl.cli._console import notice

    return api.build_environment(workspace(), name, version, strict, constraint or [], log=notice)


BUILD_COLUMNS = ("key", "python", "size_bytes", "last_used", "source")


@command(app, "builds", columns=BUILD_COLUMNS)
def builds() -> object:
    """List every isolated build under the workspace's envs/ folder (registered environments and model files)."""
    from batchctl import api

    return api.environment_builds(workspace())


@command(app, "prune")
def prune(
    unused_days: Annotated[
        float, typer.Option("--unused-days", help="Remove builds not used for this many days (default 30).")
    ] = 30,
) -> object:
    """Remove isolated builds not used for --unused-days days, and say how much was freed."""
    from batchctl import api

    return api.prune_environment_builds(workspace(), unused_days)


@command(app, "list", columns=ENVIRONMENT_COLUMNS)
def list_(name: NameOpt = None) -> object:
    """List environments (latest versions), or every version of --name."""
    from batchctl import api

    return api.list_environments(workspace(), name)


@command(app, "delete")
def delete(name: NameReq, version: VersionOpt = None, yes: YesOpt = False) -> object:
    """Delete an environment version (or all versions); refused while a deployment uses it."""
    from batchctl import api

    ws = workspace()
    api.get_environment(ws, name, version)
    what = f"version {version} of environment '{name}'" if version else f"every version of environment '{name}'"
    confirm(f"Delete {what}?", yes)
    return api.delete_environment(ws, name, version)
