"""The fsspec seam: where inputs are listed and fetched and where results are published.

Local paths use plain os calls (fast, and the create-only publish is `os.link`); every other URL goes
through fsspec, which is imported only when a remote location is used. Credentials are never stored:
`storage_options()` reads them from the environment each time.

One job per module, each importing only the ones above it:
  `batchctl.urls` (pure parsing) -> `faults` (error translation) -> `azure` (credentials, adlfs) ->
  `locations` (Location, the filesystem for it) -> `inputs` (probe, list, fetch) -> `outputs` (create-only
  publish, download).
This package re-exports the names the rest of batchctl uses (`storage.Location`, `storage.publish`, ...);
private helpers are imported from their module.
"""

from __future__ import annotations

from batchctl.storage.azure import connection_string_account_url
from batchctl.storage.inputs import (
    Entry,
    ListingStream,
    entries_of,
    fetch,
    list_inputs,
    local_columns,
    open_listing,
    stamp_of,
)
from batchctl.storage.locations import Location, location, location_from_record, location_record, remote
from batchctl.storage.outputs import (
    check_output_folder,
    download,
    list_files,
    prepare_output_folder,
    probe_write,
    publish,
    refuse_existing,
    upload_tree,
)
from batchctl.urls import AzureAddress, account_url, azure_address, check_remote_path

__all__ = [
    "AzureAddress",
    "Location",
    "account_url",
    "azure_address",
    "check_output_folder",
    "check_remote_path",
    "connection_string_account_url",
    "download",
    "Entry",
    "ListingStream",
    "entries_of",
    "fetch",
    "list_files",
    "list_inputs",
    "local_columns",
    "location",
    "location_from_record",
    "location_record",
    "open_listing",
    "prepare_output_folder",
    "probe_write",
    "publish",
    "refuse_existing",
    "remote",
    "stamp_of",
    "upload_tree",
]
