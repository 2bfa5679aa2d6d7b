"""jobs/listing.compare: the last attempt's listing against the input now, merged in one pass (both sorted
by path), as issue 23's resume needs it: added, changed (size or stamp), removed, and the hash of the plan's
files as they are now."""

from __future__ import annotations

import hashlib

from batchctl.jobs import plan as plan_io
from batchctl.jobs.listing import compare

BEFORE = [("a.csv", 1, 10), ("b/x.csv", 2, 20), ("c.csv", 3, 30), ("gone.csv", None, None)]


def test_added_changed_removed_and_the_hash_of_the_listing_now() -> None:
    now = [("0.csv", 9, 9), ("a.csv", 1, 10), ("b/x.csv", 2, 21), ("b/y.csv", 4, 40), ("z.csv", 5, 50)]
    changes = compare(BEFORE, iter(now))
    assert (changes.added, changes.changed, changes.removed) == (["0.csv", "b/y.csv", "z.csv"], ["b/x.csv"], ["c.csv"])
    assert changes.now == [("b/x.csv", 2, 21), ("c.csv", None, None)]
    assert changes.touched == {"b/x.csv", "c.csv"}
    listed_now = [("a.csv", 1, 10), ("b/x.csv", 2, 21), ("c.csv", None, None), ("gone.csv", None, None)]
    assert changes.sha256 == hashlib.sha256(b"".join(map(plan_io.entry_line, listed_now))).hexdigest()
    assert changes.shown() == "added: 0.csv, b/y.csv, z.csv; removed: c.csv; changed: b/x.csv"


def test_a_file_that_comes_back_is_changed_and_an_unfinished_listing_adds_nothing_past_its_end() -> None:
    now = [("a.csv", 1, 10), ("b/x.csv", 2, 20), ("c.csv", 3, 30), ("gone.csv", 7, 70), ("later.csv", 1, 1)]
    changes = compare(BEFORE, iter(now), complete=False)
    assert (changes.added, changes.changed, changes.removed) == ([], ["gone.csv"], [])
    assert compare(BEFORE, iter(now)).added == ["later.csv"]
    assert not compare(BEFORE, iter(BEFORE)).touched
