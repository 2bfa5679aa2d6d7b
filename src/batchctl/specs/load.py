"""YAML file -> --set overrides -> relative paths resolved against the spec's folder -> validated model.

Every failure is one SpecError line: `<file>: <dotted.field>: <rule>`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from batchctl.errors import SpecError
from batchctl.urls import is_url

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

MAX_SPEC_BYTES = 1024 * 1024
# values in a spec, counting every use of a YAML alias: a few hundred bytes of aliases can expand to
# 10^9 values ("billion laughs") that validation and the registry's JSON would then walk for ever
MAX_SPEC_VALUES = 100_000
_UNION_TAGS = {
    "reference",
    "inline",
    "azure_blob",
    "azure_data_lake_gen2",
    "local",
    "ray",
    "amlcompute",
    "str",
    "InlineEnvironment",
}
# fields holding a local path that resolves against the spec's folder, per spec kind
PATH_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "deployment": (("model", "path"), ("code_configuration", "code"), ("environment", "conda_file")),
    "model": (("path",),),
    "data": (("path",),),
    "environment": (("conda_file",), ("build", "path")),
    "datastore": (("path",),),
    "job": (),
}

T = TypeVar("T")


OPTIONS = " options"


def field_label(source: str, field: str) -> str:
    """How an error names a field: `deployment.yml: settings.timeout` for a file; `model path` for a spec
    built from a command's options (`model create --path ...`), whose fields are the options' names."""
    if source.endswith(OPTIONS):
        return f"{source.removesuffix(OPTIONS)} {field}"
    return f"{source}: {field}"


def format_validation_error(source: str, exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = ".".join(
        str(part) for part in first["loc"] if str(part) not in _UNION_TAGS and not str(part).startswith("function-")
    )
    msg = str(first["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if first["type"] == "extra_forbidden":
        msg = "unknown field (not part of the schema)"
    elif first["type"] == "missing":
        msg = "field required"
    elif first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        # a discriminated union (datastore / compute `type`): name the discriminator field like any other
        ctx = first.get("ctx") or {}
        field = str(ctx.get("discriminator", "")).strip("'")
        if field.isidentifier():
            loc = f"{loc}.{field}" if loc else field
            if first["type"] == "union_tag_not_found":
                msg = "field required"
            else:
                head, _, last = str(ctx.get("expected_tags", "")).rpartition(", ")
                msg = f"Input should be {head} or {last}" if head else f"Input should be {last}"
    text = f"{field_label(source, loc)}: {msg}" if loc else f"{source}: {msg}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"
    return text


def _too_many_values(data: Any, limit: int = MAX_SPEC_VALUES) -> bool:
    """Whether `data` holds more than `limit` values (aliases counted at each use); stops at the limit."""
    count, stack = 0, [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return False


def _check_size(data: Any, source: str) -> None:
    if _too_many_values(data):
        raise SpecError(
            f"{source}: too many values for a spec (more than {MAX_SPEC_VALUES}, counting each use of a YAML alias)"
        )


def _nul_at(data: Any, where: str = "") -> str | None:
    """The key path of the first string holding a NUL character (no name, path or URL can: the OS refuses it
    with "embedded null byte" wherever it is used), else None."""
    if isinstance(data, str):
        return where or "(the value)" if "\x00" in data else None
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        label = f"{where}[{key}]" if isinstance(data, list) else f"{where}.{key}" if where else str(key)
        if isinstance(key, str) and "\x00" in key:
            return label
        found = _nul_at(value, label)
        if found:
            return found
    return None


def validate_data(model: Any, data: Any, source: str) -> Any:
    """Validate a mapping against a spec model (or Annotated union) with file-named errors."""
    from pydantic import BaseModel, TypeAdapter, ValidationError

    _check_size(data, source)
    nul = _nul_at(data)
    if nul:
        raise SpecError(f"{source}: {nul}: contains a NUL character (\\0), which no name or path can hold")
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(data)
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(source, exc)) from exc


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


_LOADER: Any = None


def _unique_key_loader() -> Any:
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently).
    A key that overrides one brought in by a merge (`<<: *base`) is not a duplicate."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = seen.setdefault(key, key_node.start_mark.line + 1)
                    except TypeError:  # an unhashable key: SafeLoader reports it
                        continue
                    if first != key_node.start_mark.line + 1:
                        raise _DuplicateKey(key, key_node.start_mark.line + 1, first)
            return super().construct_mapping(node, deep)

    _LOADER = UniqueKeyLoader
    return _LOADER


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    source = path.name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from exc
    if path.is_dir():
        raise SpecError(f"{path}: is a folder, not a YAML file")
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"{source}: file is too large for a spec ({size} bytes; the limit is {MAX_SPEC_BYTES})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not UTF-8 text") from exc
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise SpecError(f"{source}: duplicate key '{exc.key}' at line {exc.line} (first at line {exc.first})") from None
    except yaml.constructor.ConstructorError as exc:
        where = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise SpecError(f"{source}: invalid YAML{where}: {exc.problem} (only plain YAML is accepted)") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{source}: invalid YAML{where}: {problem}") from exc
    except RecursionError as exc:
        raise SpecError(f"{source}: invalid YAML: nested too deeply") from exc
    if data is None:
        raise SpecError(f"{source}: the file is empty; expected a mapping of fields")
    _check_size(data, source)
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping of fields at the top level, got a {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def parse_set_value(raw: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        return raw


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], source: str = "--set") -> dict[str, Any]:
    """Apply `a.b=value` overrides (values parsed as YAML scalars, as `az --set` parses JSON)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"{source}: '{item}' must look like key.path=value")
        parts = key.split(".")
        if any(not p for p in parts):
            raise SpecError(f"{source}: '{key}' is not a valid field path")
        node: Any = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
                node[part] = child
            if not isinstance(child, dict):
                raise SpecError(f"{source}: '{key}': '{part}' is not a mapping")
            node = child
        node[parts[-1]] = parse_set_value(raw)
    return data


def resolve_local(value: str, base: Path) -> str:
    if value.startswith(("azureml:", "models:/", "runs:/")) or is_url(value):
        return value
    return str((base / os.path.expanduser(value)).resolve())


def resolve_paths(kind: str, data: dict[str, Any], base: Path) -> dict[str, Any]:
    for field_path in PATH_FIELDS.get(kind, ()):
        node: Any = data
        for part in field_path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        leaf = field_path[-1]
        if isinstance(node, dict) and isinstance(node.get(leaf), str) and node[leaf]:
            node[leaf] = resolve_local(node[leaf], base)
    if kind == "job":
        for section in ("inputs", "outputs"):
            entries = data.get(section)
            if isinstance(entries, dict):
                for entry in entries.values():
                    if isinstance(entry, dict) and isinstance(entry.get("path"), str) and entry["path"]:
                        entry["path"] = resolve_local(entry["path"], base)
    return data


def load_spec(
    kind: str,
    model: Any,
    file: str | os.PathLike[str] | None,
    overrides: Iterable[str] = (),
    fields: Mapping[str, Any] | None = None,
    base: Path | None = None,
) -> Any:
    """Load and validate a spec of `kind` from `file` (or from `fields` alone)."""
    if file is not None:
        path = Path(file)
        data = read_yaml(path)
        source = path.name
        base = path.absolute().parent
    else:
        data = {}
        source = f"{kind}{OPTIONS}"
        base = base or Path.cwd()
    for key, value in (fields or {}).items():
        if value is not None:
            data[key] = value
    data = apply_overrides(data, overrides)
    data = resolve_paths(kind, data, base)
    return validate_data(model, data, source)


def spec_hash(spec: BaseModel) -> str:
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_name(kind: str, value: str) -> str:
    """Check a name given on the command line before it touches a path."""
    from batchctl.specs.names import asset_name_problem, endpoint_name_problem

    problem = endpoint_name_problem(value) if kind == "endpoint" else asset_name_problem(value)
    if problem:
        raise SpecError(f"{kind} name: {problem}")
    return value.lower() if kind == "endpoint" else value
