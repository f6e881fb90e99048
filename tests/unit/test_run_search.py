"""Run and experiment search through the service, on every store."""

from __future__ import annotations

import pytest

from lapis.entities.tracking import Point, ViewType
from lapis.errors import InvalidParameterValue
from lapis.tracking.search.grammar import parse_filter
from lapis.tracking.service import TrackingService


@pytest.fixture
def runs(service: TrackingService) -> dict[str, str]:
    exp = service.create_experiment("search")
    ids = {}
    for i in range(6):
        run = service.create_run(exp, run_name=f"r{i}", start_time=1000 + i).info.run_id
        ids[f"r{i}"] = run
        metrics = [Point("acc", i / 10, 1, 0)]
        if i == 5:
            metrics = [Point("acc", float("nan"), 1, 0)]
        service.log_batch(
            run,
            metrics=metrics,
            params=[("lr", "0.1" if i < 3 else "0.2")],
            tags=[("team", "Vision" if i % 2 else "vision")],
        )
        if i % 2 == 0:
            service.update_run(run, status="FINISHED")
    service.delete_run(ids["r4"])
    return ids


def names(
    service: TrackingService,
    flt: str = "",
    order: list[str] | None = None,
    view: ViewType = ViewType.ACTIVE_ONLY,
) -> list[str]:
    exp = service.get_experiment_by_name("search").experiment_id
    found, _ = service.search_runs([exp], flt, view, 100, order)
    return [r.info.run_name or "" for r in found]


def test_filters_combine_metrics_params_tags_attributes(service, runs) -> None:
    flt = "metrics.acc >= 0.2 and params.lr = '0.2' and tags.team LIKE 'v%'"
    assert names(service, flt) == []  # r4 matches but is deleted
    assert names(service, flt, view=ViewType.ALL) == ["r4"]
    assert names(service, "attributes.status = 'FINISHED'") == ["r2", "r0"]
    assert names(service, "run_name = 'r3'") == ["r3"]


def test_like_is_case_sensitive_and_ilike_is_not(service, runs) -> None:
    assert names(service, "tags.team LIKE 'V%'") == ["r5", "r3", "r1"]
    assert names(service, "tags.team ILIKE 'V%'") == ["r5", "r3", "r2", "r1", "r0"]


def test_nan_never_matches_a_numeric_comparison(service, runs) -> None:
    assert "r5" not in names(service, "metrics.acc > -1")
    assert "r5" not in names(service, "metrics.acc != 0.3")


def test_order_by_metric_puts_missing_values_last(service, runs) -> None:
    assert names(service, order=["metrics.acc DESC"]) == ["r3", "r2", "r1", "r0", "r5"]
    assert names(service, order=["metrics.acc ASC"]) == ["r0", "r1", "r2", "r3", "r5"]
    assert names(service) == ["r5", "r3", "r2", "r1", "r0"]  # default: newest first


def test_paging_walks_every_run_once(service, runs) -> None:
    exp = service.get_experiment_by_name("search").experiment_id
    seen, token = [], None
    while True:
        page, token = service.search_runs([exp], "", ViewType.ALL, 2, ["params.lr ASC"], token)
        seen += [r.info.run_name for r in page]
        if token is None:
            break
    assert sorted(seen) == [f"r{i}" for i in range(6)]


def test_run_id_in_list(service, runs) -> None:
    flt = f"attributes.run_id IN ('{runs['r1']}', '{runs['r2']}')"
    assert names(service, flt) == ["r2", "r1"]


@pytest.mark.parametrize(
    ("flt", "fragment"),
    [
        ("metrics.acc >> 1", "position 13"),
        ("metrics.acc > 1 or params.lr = '1'", "no OR"),
        ("metrics.acc > 'high'", "numeric"),
        ("params.lr > '0.1'", "comparator"),
        ("bogus.key = 'x'", "unknown entity 'bogus'"),
        ("attributes.colour = 'red'", "Invalid attribute key 'colour'"),
    ],
)
def test_bad_filters_name_the_problem(service, runs, flt: str, fragment: str) -> None:
    with pytest.raises(InvalidParameterValue, match=fragment):
        names(service, flt)


def test_grammar_quoted_keys_and_lists() -> None:
    clauses = parse_filter("metrics.`val loss` < 2 AND tags.\"a.b\" IN ('x', 'y')")
    assert [(c.entity, c.key, c.op, c.value) for c in clauses] == [
        ("metrics", "val loss", "<", 2.0),
        ("tags", "a.b", "IN", ["x", "y"]),
    ]


def test_experiment_search_by_name_and_tag(service) -> None:
    service.create_experiment("team-a", tags={"owner": "ana"})
    service.create_experiment("team-b", tags={"owner": "bo"})
    found, _ = service.search_experiments(filter_string="name LIKE 'team-%' and tags.owner = 'bo'")
    assert [e.name for e in found] == ["team-b"]
    ordered, _ = service.search_experiments(order_by=["name DESC"])
    assert [e.name for e in ordered][:2] == ["team-b", "team-a"]
