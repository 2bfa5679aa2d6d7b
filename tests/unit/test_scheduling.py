"""The order xdist hands out the test groups in (tests/support/scheduling.py): longest first."""

from __future__ import annotations

from support import scheduling


def test_groups_go_longest_first_by_the_last_runs_seconds_else_by_their_markers():
    # collection order: many quick tests, one long test, a shared folder, a file never measured
    groups = {"cli/test_help.py": (0, 60), "test_readme_tour.py": (1, 1), "ray": (20, 5), "jobs/test_new.py": (2, 0)}
    # nothing measured yet: the estimate (a slow test counts for many quick ones)
    assert scheduling.order_groups(groups, {}) == ["ray", "cli/test_help.py", "jobs/test_new.py", "test_readme_tour.py"]
    # measured: the one-test file that took 44 s goes first; an unmeasured group keeps its estimate
    measured = {"cli/test_help.py": 9.5, "test_readme_tour.py": 44.0, "ray": 40.0, "gone/test_old.py": 99.0}
    assert scheduling.order_groups(groups, measured) == [
        "test_readme_tour.py",
        "ray",
        "jobs/test_new.py",
        "cli/test_help.py",
    ]


def test_ties_keep_the_collection_order_and_a_bad_cache_value_is_an_estimate():
    groups = {"b.py": (0, 1), "a.py": (0, 1), "c.py": (0, 1)}
    assert scheduling.order_groups(groups, {"c.py": "not seconds"}) == ["b.py", "a.py", "c.py"]


def test_a_run_replaces_the_groups_it_measured_and_keeps_the_others():
    merged = scheduling.merge_seconds({"a.py": 3.0, "b.py": 7.0, "bad": "x"}, {"b.py": 2.345, "c.py": 1.0})
    assert merged == {"a.py": 3.0, "b.py": 2.35, "c.py": 1.0}


def test_a_shared_folder_is_one_group_any_other_file_its_own():
    shared = ("ray", "studio")
    assert scheduling.group_of("ray/test_ray_jobs.py", shared) == "ray"
    assert scheduling.group_of("studio/sub/test_x.py", shared) == "studio"
    assert scheduling.group_of("jobs/test_ray_like.py", shared) == "jobs/test_ray_like.py"
    assert scheduling.group_of("test_readme_tour.py", shared) == "test_readme_tour.py"


def test_the_controller_finds_the_group_from_a_node_id():
    shared = ("ray", "studio")
    assert scheduling.group_of_nodeid("tests/ray/test_ray_jobs.py::test_a[x]", shared) == "ray"
    assert scheduling.group_of_nodeid("tests/jobs/test_x.py::Case::test_b[a::b]", shared) == "jobs/test_x.py"
    # with the `@group` suffix xdist appends where it can (pytest < 9)
    assert scheduling.group_of_nodeid("tests/jobs/test_x.py::test_c@jobs/test_x.py", shared) == "jobs/test_x.py"


def test_the_scheduler_given_to_xdist_groups_by_path():
    # pytest 9 ignores the `@group` suffix xdist tries to put on node ids: without this, each test would
    # be a group of its own (built without __init__, which wants the run's worker nodes)
    cls = scheduling.scheduler_class(("ray", "studio"))
    scheduler = object.__new__(cls)
    assert scheduler._split_scope("tests/ray/test_ray_jobs.py::test_a[x]") == "ray"
    assert scheduler._split_scope("tests/jobs/test_x.py::test_b") == "jobs/test_x.py"
    assert scheduler._split_scope("tests/jobs/test_x.py::test_c[2]") == "jobs/test_x.py"
