"""How pytest-xdist groups the tests and in what order it hands the groups out (`make test` runs
`-n 2 --dist loadgroup`).

The groups: xdist's `loadgroup` reads the `xdist_group` mark by appending `@group` to each test's node id,
which it does by setting `item._nodeid`; pytest 9 keeps the id elsewhere (pytest-xdist issue #1386, open),
so the suffix never appears and every test was a group of its own (a Ray head, a browser and each file's
module fixtures started in both workers). `make_scheduler` gives xdist a scheduler that finds the group
from the test file's path instead, with the rule the marks are set by (tests/conftest.py).

The order: xdist's own sorts the groups by their number of tests, so a file of one long test (the README
tour, the compatibility table, the split property: 30-45 s each) would come last, and a run would end with
one worker on it while the other sat idle. Here the groups go longest first (the longest-processing-time
rule): by the seconds each group took in the last run on this machine (kept in pytest's cache by the
controller), else by the seed file's figures (group_seconds.json), else by an estimate from its markers.
Both workers compute the same order from the same files: xdist refuses to run when their collections
differ, in order too."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

CACHE_KEY = "batchctl/group-seconds"
# what the groups took in one whole run (25t, under load), for a machine whose cache has no figures yet:
# only their order matters, so it need not be current; a run's own figures replace it in the cache
SEED = Path(__file__).with_name("group_seconds.json")
# a group's estimated seconds when no earlier run measured it: a test marked slow starts processes or
# servers (seconds to tens of seconds), any other test takes a fraction of a second
SLOW_TEST_SECONDS = 8.0
FAST_TEST_SECONDS = 0.3


def group_of_nodeid(nodeid: str, shared: Iterable[str]) -> str:
    """The group of a node id as xdist's controller sees it (`tests/jobs/test_x.py::test[a]`, maybe with
    an `@group` suffix)."""
    return group_of(nodeid.split("::", 1)[0].removeprefix("tests/"), shared)


def make_scheduler(config: Any, log: Any, shared: Iterable[str]) -> Any:
    """xdist's loadgroup scheduler, with each test's group found from its path."""
    return scheduler_class(shared)(config, log)


def scheduler_class(shared: Iterable[str]) -> Any:
    from xdist.scheduler import LoadGroupScheduling

    groups = tuple(shared)

    class FileGroupScheduling(LoadGroupScheduling):  # type: ignore[misc]  # xdist ships no type hints here
        def _split_scope(self, nodeid: str) -> str:
            return group_of_nodeid(nodeid, groups)

    return FileGroupScheduling


def group_of(rel_path: str, shared: Iterable[str]) -> str:
    """A test's xdist group from its file's path under tests/: a shared folder is one group, any other
    file is a group of its own."""
    parts = PurePosixPath(rel_path).parts
    return parts[0] if parts and parts[0] in tuple(shared) else rel_path


def estimate(slow_tests: int, other_tests: int) -> float:
    return slow_tests * SLOW_TEST_SECONDS + other_tests * FAST_TEST_SECONDS


def order_groups(groups: Mapping[str, tuple[int, int]], measured: Mapping[str, float]) -> list[str]:
    """The groups, longest first. groups: name -> (tests marked slow, other tests), in collection
    order (kept for ties); measured: name -> seconds of an earlier run (groups not in it are estimated)."""
    names = list(groups)
    cost = {name: estimate(*groups[name]) for name in names}
    cost.update({name: float(v) for name, v in measured.items() if name in cost and isinstance(v, (int, float))})
    return sorted(names, key=lambda name: -cost[name])


def measured_seconds(cache: Any) -> dict[str, Any]:
    """The seconds each group took: this machine's last run (pytest's cache), else the seed file."""
    try:
        seed = json.loads(SEED.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        seed = {}
    last = cache.get(CACHE_KEY, {}) if cache is not None else {}
    return {**(seed if isinstance(seed, dict) else {}), **(last if isinstance(last, dict) else {})}


def merge_seconds(previous: Mapping[str, float], run: Mapping[str, float]) -> dict[str, float]:
    """The cache after a run: the groups this run measured replace their old figures; the others stay
    (a run of a few files keeps what a whole run measured for the rest)."""
    merged = {name: float(seconds) for name, seconds in previous.items() if isinstance(seconds, (int, float))}
    merged.update({name: round(seconds, 2) for name, seconds in run.items()})
    return merged
