"""`job errors` groups failures by a normalised message (issue 23, finding 13): numbers and paths are
replaced, markup and words are left whole."""

from __future__ import annotations

import pytest

from batchctl.jobs.commands import _normalise


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("bad value 1", "bad value N"),
        ("row 12 of 1500 failed after 0.25 s.", "row N of N failed after N s."),
        ("offset -3 is out of range", "offset N is out of range"),
        ("cannot open /data/in/part-001.csv: no such file", "cannot open <path>: no such file"),
        ("[Errno 2] No such file or directory: /tmp/x/y.csv", "[Errno N] No such file or directory: <path>"),
        ("column 'age' holds 'abc'", "column '…' holds '…'"),
        ("unexpected tag </script> in <b>bold</b>", "unexpected tag </script> in <b>bold</b>"),
        ("password hunter2 rejected", "password hunter2 rejected"),
        ("int64 cannot hold NaN (utf-8, sha256, 3/4 done)", "int64 cannot hold NaN (utf-8, sha256, N/N done)"),
        ("read (/srv/a.csv) then /srv/b.csv, then stop", "read (<path>) then <path>, then stop"),
        ("path a/b/c stays relative", "path a/b/c stays relative"),
    ],
)
def test_numbers_and_paths_are_replaced_words_and_markup_are_not(message: str, normalised: str) -> None:
    assert _normalise(message) == normalised


def test_messages_that_differ_only_by_numbers_or_paths_share_a_group() -> None:
    a = _normalise("KeyError at row 3 in /data/a.csv")
    assert a == _normalise("KeyError at row 41 in /data/sub/b.csv") == "KeyError at row N in <path>"
    assert _normalise("token hunter2 expired") != _normalise("token hunter3 expired")
