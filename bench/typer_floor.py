"""The smallest useful typer app: one group, one command, two options.

bench/run.py times it beside `batchctl endpoint list` to show the start-up floor of any typer CLI:
typer 0.29 converts the app to click and builds a pydantic TypeAdapter per option at every run,
which a bare `import typer, pydantic, yaml` does not pay.
"""

from typing import Annotated

import typer

app = typer.Typer()
endpoint = typer.Typer()
app.add_typer(endpoint, name="endpoint")


@app.callback()
def root(workspace: Annotated[str | None, typer.Option("--workspace")] = None) -> None:
    pass


@endpoint.command("list")
def list_(output: Annotated[str | None, typer.Option("--output", "-o")] = None) -> None:
    print("[]")


@endpoint.command("show")
def show(name: str = "") -> None:
    print(name)


if __name__ == "__main__":
    app()
