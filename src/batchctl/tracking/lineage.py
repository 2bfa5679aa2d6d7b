"""The lineage manifest of a job: what produced its results, so that a result can be reproduced and checked.

- model: its reference, name, version and the sha256 over its files (`workspace.content_hash`: relative
  paths and bytes, the hash the registry keeps for every model version);
- code: the sha256 of the code snapshot and the scoring script (None for MLflow no-code deployments);
- input: its URI and a listing hash over (path, size, mtime in ns) locally, (path, size, ETag) on blob: the
  sha256 of the entry lines of the job's plan.jsonl (jobs/plan.py), computed as the listing is read;
- the effective settings; Python and the versions of batchctl, mlflow, scikit-learn and pandas;
- output: the results file's URI and the sha256 of its bytes (computed while the parts are concatenated).

`job verify` re-hashes the published results and the model and compares them with the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from batchctl import storage
from batchctl.errors import BatchctlError, InvalidStateError, NotFoundError, redact
from batchctl.storage import Location
from batchctl.workspace import content_hash

LINEAGE_VERSION = 1
LISTING_FILE = "input_listing.json"  # written by versions before 0.3 (now the plan holds the listing)
PACKAGES = ("batchctl", "mlflow", "scikit-learn", "pandas")
# `job verify` exit codes (README "Exit codes")
RESULTS_DIFFER, MODEL_DIFFERS, BOTH_DIFFER, ENVIRONMENT_DIFFERS = 10, 11, 12, 14


class LineageMismatchError(BatchctlError):
    """`job verify` found a difference: its exit code says which part (10 results, 11 model, 12 both)."""

    exit_code = RESULTS_DIFFER


def package_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        candidates = (name, "mlflow-skinny") if name == "mlflow" else (name,)
        out[name] = None
        for candidate in candidates:
            try:
                out[name] = metadata.version(candidate)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def _stamp(info: dict[str, Any]) -> str | None:
    return storage.stamp_of(info)


def listing_entries(root: Location, files: list[str]) -> tuple[str, list[list[Any]]]:
    """(basis, [[path, size, stamp], ...]) of the input files: mtime in ns locally, the ETag on blob (or
    what the store gives). A file that vanished gets size and stamp None."""
    if root.is_local:
        entries: list[list[Any]] = []
        for rel in files:
            try:
                st = os.stat(os.path.join(root.url, rel))
                entries.append([rel, st.st_size, st.st_mtime_ns])
            except OSError:
                entries.append([rel, None, None])
        return "path,size,mtime_ns", entries
    fs, path = storage.remote(root)
    base = fs._strip_protocol(path).rstrip("/")
    if len(files) == 1:
        found = {f"{base}/{files[0]}": fs.info(f"{path.rstrip('/')}/{files[0]}")}
    else:
        found = fs.find(path, detail=True)
    by_rel = {}
    for full, info in found.items():
        full = fs._strip_protocol(full) if "://" in full else full
        rel = full[len(base) :].lstrip("/") if full.startswith(base) else full
        by_rel[rel] = info
    entries = []
    for rel in files:
        info = by_rel.get(rel)
        entries.append([rel, info.get("size"), _stamp(info)] if info else [rel, None, None])
    return "path,size,etag", entries


def listing_hash(entries: list[list[Any]]) -> str:
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
    return digest.hexdigest()


def listing_changes(before: list[list[Any]], after: list[list[Any]]) -> dict[str, list[str]]:
    """Which input files were added, removed or changed (size or stamp) between two listings."""
    old = {e[0]: (e[1], e[2]) for e in before}
    new = {e[0]: (e[1], e[2]) for e in after}
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": sorted(k for k in set(old) & set(new) if old[k] != new[k]),
    }


def _model_parts(ref: str) -> tuple[str, str | None]:
    bare = ref.removeprefix("azureml:")
    if ":" in bare:
        name, version = bare.rsplit(":", 1)
        return name, version
    return bare, None


def build(record: dict[str, Any], root: Location, input_type: str) -> dict[str, Any]:
    """The job's manifest at start. The input's listing hash and file count are filled in once the listing
    is complete (a big input is listed while it is scored), the output hash once the results are published.
    The listing itself is the job's plan (plan.jsonl: one [path, size, stamp] line per file), which
    `job rerun` compares with the input as it is then."""
    snapshot = record["deployment_snapshot"]
    name, version = _model_parts(record["model"])
    model: dict[str, Any] = {"ref": record["model"], "name": name, "version": version, "type": snapshot["model_type"]}
    model["sha256"] = content_hash(Path(snapshot["model_path"]))
    code = None
    if snapshot.get("code_dir"):
        code = {
            "sha256": content_hash(Path(snapshot["code_dir"])),
            "snapshot": os.path.basename(snapshot["code_dir"]),
            "scoring_script": snapshot.get("scoring_script"),
        }
    listing: dict[str, Any] = {"listing_sha256": None, "listing_basis": None}
    input_data = (record.get("inputs") or {}).get("input_data") or {}
    return {
        "version": LINEAGE_VERSION,
        "job": record["name"],
        "endpoint": record["endpoint_name"],
        "deployment": record["deployment_name"],
        "model": model,
        "code": code,
        "input": {
            "uri": input_data.get("path"),
            "type": input_type,
            "root": root.url,
            "files": record["counts"].get("files"),
            **listing,
        },
        "settings": record["settings"],
        "environment": {"python": platform.python_version(), "packages": package_versions()},
        "output": {"uri": record.get("output_file") or record["output_location"]["url"], "sha256": None, "bytes": None},
    }


def hash_location(loc: Location) -> str:
    """sha256 of one file, local or remote (streamed; a remote file is never downloaded whole)."""
    digest = hashlib.sha256()
    if loc.is_local:
        with open(loc.url, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    fs, path = storage.remote(loc)
    with fs.open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(record: dict[str, Any]) -> dict[str, Any]:
    """Re-hash the published results and the model and compare with the manifest. Returns the report;
    raises LineageMismatchError (carrying it as `.record`) when a part differs."""
    lineage = record.get("lineage")
    name = record["name"]
    if not lineage:
        raise NotFoundError(
            f"job '{name}' has no lineage manifest",
            "a job gets one when it ends or publishes its results; one whose runner was killed before that "
            "has none (nor has a job run by batchctl 0.1)",
        )
    if record["status"] != "Completed":
        raise InvalidStateError(f"job '{name}' is {record['status']}; only a Completed job's results can be verified")
    report: dict[str, Any] = {"name": name}
    expected = lineage["output"].get("sha256")
    results: dict[str, Any] = {"uri": lineage["output"]["uri"], "expected": expected}
    location = record.get("output_file_location")
    if expected is None or location is None:
        results.update(actual=None, match=True, note="summary_only job: no results file to hash")
    else:
        try:
            results["actual"] = hash_location(Location(location["url"], location["protocol"]))
        except FileNotFoundError:
            results.update(actual=None, error="the results file no longer exists")
        except BatchctlError as exc:
            results.update(actual=None, error=exc.message)
        except Exception as exc:  # a transport error from the store: one line
            results.update(
                actual=None, error=redact(str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
            )
        results["match"] = results["actual"] == expected
    model_path = Path(record["deployment_snapshot"]["model_path"])
    model = {"ref": lineage["model"]["ref"], "path": str(model_path), "expected": lineage["model"]["sha256"]}
    model["actual"] = content_hash(model_path) if model_path.exists() else None
    if model["actual"] is None:
        model["error"] = "the model files no longer exist in the workspace"
    model["match"] = model["actual"] == model["expected"]
    env = verify_environment(lineage)
    report.update(results=results, model=model, ok=bool(results["match"] and model["match"]))
    if env is not None:
        report["environment"] = env
    if report["ok"] and env is not None and env["match"] is False:
        report["ok"] = False
        raise LineageMismatchError(
            f"job '{name}': the environment's lock file differs from the lineage manifest",
            exit_code=ENVIRONMENT_DIFFERS,
            record=report,
        )
    if report["ok"]:
        return report
    code = (
        BOTH_DIFFER
        if not results["match"] and not model["match"]
        else (RESULTS_DIFFER if not results["match"] else MODEL_DIFFERS)
    )
    what = {BOTH_DIFFER: "results and model differ", RESULTS_DIFFER: "results differ", MODEL_DIFFERS: "model differs"}
    raise LineageMismatchError(f"job '{name}': {what[code]} from the lineage manifest", exit_code=code, record=report)


def verify_environment(lineage: dict[str, Any]) -> dict[str, Any] | None:
    """The isolated environment's lock file against the manifest's sha256 (None: the job ran in batchctl's
    interpreter). A build removed since (`environment prune`) cannot be checked: match is None, said so."""
    isolated = (lineage.get("environment") or {}).get("isolated") or {}
    expected = isolated.get("lock_sha256")
    if not expected:
        return None
    out: dict[str, Any] = {"key": isolated.get("key"), "lock_file": isolated.get("lock_file"), "expected": expected}
    try:
        out["actual"] = hashlib.sha256(Path(isolated["lock_file"]).read_bytes()).hexdigest()
    except (OSError, KeyError, TypeError):
        out.update(actual=None, match=None, note="the build is gone (pruned?); its lock file cannot be checked")
        return out
    out["match"] = out["actual"] == expected
    return out
