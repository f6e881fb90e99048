"""Search SELECTs against real databases: SQLite always, PostgreSQL when configured.

One small fixed data set per database (module scope; the tests only read).
Set LAPIS_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test
to run every test on PostgreSQL too, in a temporary database dropped after.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.pool import StaticPool

from lapis.errors import InvalidParameterValue
from lapis.store.sql import tables as t
from lapis.tracking.search.experiments import experiment_search_select
from lapis.tracking.search.registry import (
    model_version_search_select,
    registered_model_search_select,
)
from lapis.tracking.search.runs import run_search_select

PG_URL = os.environ.get("LAPIS_TEST_DATABASE_URL")
NAN = float("nan")
RUN = {name: f"{i:032x}" for i, name in enumerate(["r1", "r2", "r3", "r4", "r5", "r6"], 1)}
NAME = {v: k for k, v in RUN.items()}


def _run(name: str, exp: int, status: str, start: int | None, **kw: Any) -> dict[str, Any]:
    row = {
        "run_uuid": RUN[name],
        "name": kw.pop("run_name", name),
        "experiment_id": exp,
        "status": status,
        "start_time": start,
        "end_time": None,
        "user_id": None,
        "lifecycle_stage": "active",
        "artifact_uri": f"mlflow-artifacts:/{exp}/{RUN[name]}/artifacts",
    }
    row.update(kw)
    return row


def _seed(engine: Engine) -> None:
    t.metadata.create_all(engine)
    # executemany takes its columns from the first row: every row names every column.
    exp = {"artifact_location": "x", "last_update_time": 5, "lifecycle_stage": "active"}
    runs = [
        _run("r1", 1, "FINISHED", 100, run_name="alpha", end_time=200, user_id="ana"),
        _run("r2", 1, "RUNNING", 300, run_name="Beta", user_id="bo"),
        _run("r3", 1, "FAILED", 200, run_name="gamma_1", user_id="ana"),
        _run("r4", 1, "FINISHED", None, run_name="delta"),
        _run("r5", 1, "FINISHED", 400, run_name="gone", lifecycle_stage="deleted"),
        _run("r6", 2, "FINISHED", 500, run_name="other"),
    ]
    metrics = [("r1", "acc", 0.9), ("r1", "loss", 0.1), ("r2", "acc", 0.5)]
    metrics += [("r2", "loss", NAN), ("r3", "acc", NAN), ("r5", "acc", 1.0), ("r6", "acc", 0.99)]
    params = [("r1", "lr", "0.1"), ("r1", "opt", "Adam"), ("r2", "lr", "0.01")]
    params += [("r3", "lr", "0.1"), ("r3", "opt", "adam")]
    tags = [("r1", "team", "Vision"), ("r1", "a.b", "x"), ("r2", "team", "vision")]
    tags += [("r2", "glob", "axxbz"), ("r3", "team", "nlp"), ("r3", "my key", "50%")]
    tags += [("r4", "glob", "a*[b]?")]
    datasets = [("ds1", "mnist", "d1"), ("ds2", "mnist", "d2"), ("ds3", "cifar", "d3")]
    inputs = [("r1", "ds1", "train"), ("r2", "ds2", "eval"), ("r2", "ds3", None)]
    with engine.begin() as conn:
        conn.execute(
            insert(t.experiments),
            [
                {"experiment_id": 1, "name": "team-a", "creation_time": 10, **exp},
                {"experiment_id": 2, "name": "team-b", "creation_time": 20, **exp},
                {"experiment_id": 3, "name": "old", "creation_time": 30, **exp}
                | {"lifecycle_stage": "deleted"},
                {"experiment_id": 4, "name": "x_y", "creation_time": 10, **exp},
            ],
        )
        conn.execute(
            insert(t.experiment_tags),
            [
                {"experiment_id": 1, "key": "owner", "value": "ana"},
                {"experiment_id": 2, "key": "owner", "value": "Bo"},
            ],
        )
        conn.execute(insert(t.runs), runs)
        conn.execute(
            insert(t.latest_metrics),
            [
                {"run_uuid": RUN[r], "key": k, "step": 0, "timestamp": 0}
                | ({"value": 0.0, "is_nan": True} if v != v else {"value": v, "is_nan": False})
                for r, k, v in metrics
            ],
        )
        conn.execute(
            insert(t.params), [{"run_uuid": RUN[r], "key": k, "value": v} for r, k, v in params]
        )
        conn.execute(
            insert(t.tags), [{"run_uuid": RUN[r], "key": k, "value": v} for r, k, v in tags]
        )
        conn.execute(
            insert(t.datasets),
            [
                {"dataset_uuid": u, "experiment_id": 1, "name": n, "digest": d}
                | {"source_type": "local", "source": "{}"}
                for u, n, d in datasets
            ],
        )
        conn.execute(
            insert(t.run_inputs),
            [
                {
                    "run_uuid": RUN[r],
                    "dataset_uuid": u,
                    "tags_json": json.dumps(
                        [{"key": "mlflow.data.context", "value": c}] if c else []
                    ),
                }
                for r, u, c in inputs
            ],
        )
        _seed_registry(conn)


def _seed_registry(conn: Any) -> None:
    conn.execute(
        insert(t.registered_models),
        [
            {"name": "alpha-model", "creation_time": 1, "last_updated_time": 30},
            {"name": "beta-model", "creation_time": 2, "last_updated_time": 20},
            {"name": "prompt-1", "creation_time": 3, "last_updated_time": 10},
        ],
    )
    conn.execute(
        insert(t.registered_model_tags),
        [
            {"name": "alpha-model", "key": "team", "value": "ml"},
            {"name": "prompt-1", "key": "mlflow.prompt.is_prompt", "value": "true"},
        ],
    )

    def version(name: str, v: int, updated: int, run: str, **kw: Any) -> dict[str, Any]:
        row = {"name": name, "version": v, "creation_time": v, "last_updated_time": updated}
        row["lifecycle_stage"] = "active"
        return row | {"source": f"s3://{name}/{v}", "run_id": RUN[run]} | kw

    conn.execute(
        insert(t.model_versions),
        [
            version("alpha-model", 1, 10, "r1"),
            version("alpha-model", 2, 30, "r2"),
            version("beta-model", 1, 20, "r1"),
            version("beta-model", 2, 40, "r3", lifecycle_stage="deleted"),
            version("prompt-1", 1, 50, "r1"),
        ],
    )
    conn.execute(
        insert(t.model_version_tags),
        [
            {"name": "alpha-model", "version": 2, "key": "stage", "value": "Prod"},
            {"name": "prompt-1", "version": 1, "key": "mlflow.prompt.is_prompt", "value": "true"},
        ],
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = create_engine("sqlite://", poolclass=StaticPool)
        _seed(eng)
        yield eng
        eng.dispose()
        return
    if not PG_URL:
        pytest.skip("LAPIS_TEST_DATABASE_URL not set: PostgreSQL search tests skipped")
    name = f"lapis_search_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng = create_engine(PG_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        _seed(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def runs(
    engine: Engine,
    flt: str = "",
    order: Sequence[str] | None = None,
    view: str = "ACTIVE_ONLY",
    exps: Sequence[int] = (1,),
    limit: int | None = 100,
    offset: int = 0,
) -> list[str]:
    stmt = run_search_select(list(exps), flt, list(order or []), view, limit, offset)
    with engine.connect() as conn:
        return [NAME[r] for r in conn.execute(stmt).scalars()]


# --- run filters ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("", ["r2", "r3", "r1", "r4"]),
        ("metrics.acc > 0.6", ["r1"]),
        ("metrics.acc >= 0.5", ["r2", "r1"]),
        ("metrics.acc != 0.5", ["r1"]),  # NaN (r3) and missing (r4) never match
        ("metrics.acc < 100", ["r2", "r1"]),
        ("metrics.loss < 1", ["r1"]),
        ("metrics.acc = 0.9", ["r1"]),
        ("metrics.acc >= 0.5 AND params.lr = '0.01'", ["r2"]),
        ("params.lr = '0.1'", ["r3", "r1"]),
        ("params.lr != '0.1'", ["r2"]),
        ("params.opt LIKE 'A%'", ["r1"]),
        ("params.opt LIKE 'a%'", ["r3"]),
        ("params.opt ILIKE 'A%'", ["r3", "r1"]),
        ("params.opt = 'adam'", ["r3"]),
        ("params.lr IN ('0.01', '9')", ["r2"]),
        ("params.opt IS NULL", ["r2", "r4"]),
        ("params.missing IS NULL", ["r2", "r3", "r1", "r4"]),
        ("tags.team IS NOT NULL", ["r2", "r3", "r1"]),
        ("tags.team LIKE '%ision'", ["r2", "r1"]),
        ("tags.team LIKE 'V%'", ["r1"]),
        ("tags.team ILIKE 'VISION'", ["r2", "r1"]),
        ("tags.team IN ('nlp', 'Vision')", ["r3", "r1"]),
        ("tags.team NOT IN ('nlp')", ["r2", "r1"]),
        ("tags.\"a.b\" = 'x'", ["r1"]),
        ("tags.`my key` LIKE '50\\%'", ["r3"]),
        ("tags.`my key` LIKE '5_\\%'", ["r3"]),
        ("tags.`my key` LIKE '50_'", ["r3"]),
        ("tags.`my key` LIKE '5'", []),
        ("tags.glob LIKE 'a*[b]?'", ["r4"]),  # GLOB's wildcards are literal here
        ("tags.glob LIKE 'a*%'", ["r4"]),
        ("tags.glob ILIKE 'A*[B]?'", ["r4"]),
        ("tags.glob LIKE 'a%b_'", ["r2"]),
        ("status = 'FINISHED'", ["r1", "r4"]),
        ("attributes.status != 'FINISHED'", ["r2", "r3"]),
        ("status IN ('RUNNING', 'FAILED')", ["r2", "r3"]),
        ("run_name = 'Beta'", ["r2"]),
        ("run_name LIKE 'beta'", []),
        ("`Run name` ILIKE 'beta'", ["r2"]),
        ("attributes.run_name LIKE 'gamma\\_1'", ["r3"]),
        ("attributes.run_name LIKE 'gamma_1'", ["r3"]),
        ("user_id = 'ana'", ["r3", "r1"]),
        ("start_time >= 200", ["r2", "r3"]),
        ("created < 150", ["r1"]),
        ("end_time > 0", ["r1"]),
        ("start_time != 100", ["r2", "r3"]),
        ("artifact_uri LIKE 'mlflow-artifacts:/1/%'", ["r2", "r3", "r1", "r4"]),
        ("dataset.name = 'mnist'", ["r2", "r1"]),
        ("datasets.digest IN ('d2', 'zz')", ["r2"]),
        ("dataset.name = 'cifar' AND dataset.digest = 'd2'", ["r2"]),
        ("dataset.context = 'train'", ["r1"]),
        ("dataset.context LIKE 'e%'", ["r2"]),
        ("dataset.context != 'train'", ["r2"]),
        ("dataset.context IN ('eval', 'test')", ["r2"]),
    ],
)
def test_run_filters(engine: Engine, flt: str, expected: list[str]) -> None:
    assert runs(engine, flt) == expected


def test_run_id_lists(engine: Engine) -> None:
    assert runs(engine, f"run_id IN ('{RUN['r1']}', '{RUN['r3']}')") == ["r3", "r1"]
    assert runs(engine, f"attributes.run_id NOT IN ('{RUN['r1']}')") == ["r2", "r3", "r4"]
    assert runs(engine, f"run_id = '{RUN['r2']}'") == ["r2"]


def test_view_types_and_experiments(engine: Engine) -> None:
    assert runs(engine, "metrics.acc > 0.6", view="ALL") == ["r5", "r1"]
    assert runs(engine, view="DELETED_ONLY") == ["r5"]
    assert runs(engine, "lifecycle_stage = 'deleted'", view="ALL") == ["r5"]
    assert runs(engine, "metrics.acc > 0.6", exps=[1, 2]) == ["r6", "r1"]
    assert runs(engine, exps=[]) == []
    with pytest.raises(InvalidParameterValue, match="Invalid view type"):
        runs(engine, view="SOME")


@pytest.mark.parametrize(
    ("flt", "fragment"),
    [
        ("metrics.acc > 'high'", "metrics.acc needs a numeric value, got 'high' at position 14"),
        ("metrics.acc LIKE 'a'", "comparator 'LIKE' is not valid for metrics.acc"),
        ("metrics.acc IS NULL", "comparator 'IS NULL' is not valid for metrics.acc"),
        ("params.lr > '0.1'", "comparator '>' is not valid for params.lr at position 0"),
        ("params.lr = 0.1", "params.lr needs a quoted string value, got 0.1"),
        ("attributes.colour = 'red'", "Invalid attribute key 'colour' at position 0"),
        ("start_time > 'yesterday'", "start_time needs a numeric value"),
        ("status > 'A'", "comparator '>' is not valid for status"),
        ("dataset.size = '1'", "Invalid datasets key 'size'"),
        ("metrics.a > 1 AND tags.x IS 1", "unexpected token '1' at position 28"),
    ],
)
def test_bad_run_filters(engine: Engine, flt: str, fragment: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        runs(engine, flt)
    assert err.value.message.startswith(f"Invalid filter '{flt}'")
    assert fragment in err.value.message


# --- run ordering and paging ------------------------------------------------------
@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (["metrics.acc DESC"], ["r1", "r2", "r3", "r4"]),  # numbers, then NaN, then missing
        (["metrics.acc ASC"], ["r2", "r1", "r3", "r4"]),
        (["metrics.loss"], ["r1", "r2", "r3", "r4"]),
        (["params.lr ASC"], ["r2", "r3", "r1", "r4"]),  # ties: start_time DESC
        (["params.lr DESC"], ["r3", "r1", "r2", "r4"]),
        (["start_time ASC"], ["r1", "r3", "r2", "r4"]),  # NULL last either way
        (["start_time DESC"], ["r2", "r3", "r1", "r4"]),
        (["created ASC"], ["r1", "r3", "r2", "r4"]),
        (["end_time DESC"], ["r1", "r2", "r3", "r4"]),
        (["user_id DESC"], ["r2", "r3", "r1", "r4"]),
        (["attributes.status DESC", "metrics.acc ASC"], ["r2", "r1", "r4", "r3"]),
        (["params.lr DESC", "metrics.acc DESC"], ["r1", "r3", "r2", "r4"]),
        (["tags.missing", "run_id DESC"], ["r4", "r3", "r2", "r1"]),
    ],
)
def test_run_ordering(engine: Engine, order: list[str], expected: list[str]) -> None:
    assert runs(engine, order=order) == expected


def test_order_by_and_filter_on_the_same_key(engine: Engine) -> None:
    assert runs(engine, "metrics.acc > 0", ["metrics.acc ASC", "metrics.loss DESC"]) == [
        "r2",
        "r1",
    ]


@pytest.mark.parametrize(
    ("order", "fragment"),
    [
        (["metrics.acc", "metric.acc DESC"], "duplicate order_by field"),
        (["start_time", "created"], "duplicate order_by field"),
        (["datasets.name"], "cannot order runs by datasets.name"),
        (["colour"], "cannot order runs by attributes.colour"),
        (["metrics.acc sideways"], "unexpected token 'sideways'"),
    ],
)
def test_bad_run_order(engine: Engine, order: list[str], fragment: str) -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid order_by clause") as err:
        runs(engine, order=order)
    assert fragment in err.value.message


def test_paging_walks_every_run_once(engine: Engine) -> None:
    every = runs(engine, order=["metrics.acc DESC"], view="ALL", exps=[1, 2])
    pages = [
        runs(engine, order=["metrics.acc DESC"], view="ALL", exps=[1, 2], limit=2, offset=o)
        for o in (0, 2, 4, 6)
    ]
    assert pages[-1] == []
    assert [r for page in pages for r in page] == every
    assert len(every) == 6


# --- experiments ------------------------------------------------------------------
def experiments(
    engine: Engine, flt: str = "", order: Sequence[str] | None = None, view: str = "ACTIVE_ONLY"
) -> list[int]:
    stmt = experiment_search_select(flt, list(order or []), view, 100, 0)
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


@pytest.mark.parametrize(
    ("flt", "order", "view", "expected"),
    [
        ("", None, "ACTIVE_ONLY", [2, 1, 4]),  # creation_time DESC, experiment_id ASC
        ("", None, "ALL", [3, 2, 1, 4]),
        ("", None, "DELETED_ONLY", [3]),
        ("name LIKE 'team-%'", None, "ACTIVE_ONLY", [2, 1]),
        ("name LIKE 'TEAM-%'", None, "ACTIVE_ONLY", []),
        ("attributes.name ILIKE 'TEAM-B'", None, "ACTIVE_ONLY", [2]),
        ("name LIKE 'x\\_%'", None, "ACTIVE_ONLY", [4]),
        ("name != 'team-a'", None, "ACTIVE_ONLY", [2, 4]),
        ("tags.owner = 'ana'", None, "ACTIVE_ONLY", [1]),
        ("tags.owner ILIKE 'bo'", None, "ACTIVE_ONLY", [2]),
        ("tags.owner IS NULL", None, "ACTIVE_ONLY", [4]),
        ("creation_time > 15", None, "ALL", [3, 2]),
        ("last_update_time = 5 AND creation_time <= 10", None, "ACTIVE_ONLY", [1, 4]),
        ("experiment_id IN ('1', '3')", None, "ALL", [3, 1]),
        ("experiment_id = '4'", None, "ACTIVE_ONLY", [4]),
        ("", ["name DESC"], "ACTIVE_ONLY", [4, 2, 1]),
        ("", ["creation_time ASC"], "ACTIVE_ONLY", [4, 1, 2]),  # tiebreak experiment_id DESC
        ("", ["last_update_time", "experiment_id ASC"], "ACTIVE_ONLY", [1, 2, 4]),
    ],
)
def test_experiment_search(
    engine: Engine, flt: str, order: list[str] | None, view: str, expected: list[int]
) -> None:
    assert experiments(engine, flt, order, view) == expected


@pytest.mark.parametrize(
    ("flt", "order", "fragment"),
    [
        ("metrics.a > 1", None, "experiments cannot be filtered by metrics"),
        ("colour = 'x'", None, "Invalid attribute key 'colour'"),
        ("creation_time > 'x'", None, "creation_time needs a numeric value"),
        ("experiment_id = 'abc'", None, "invalid experiment id 'abc'"),
        ("experiment_id > '1'", None, "comparator '>' is not valid for experiment_id"),
        ("", ["tags.owner"], "cannot order experiments by tags"),
        ("", ["name", "name DESC"], "duplicate order_by field"),
    ],
)
def test_bad_experiment_search(
    engine: Engine, flt: str, order: list[str] | None, fragment: str
) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        experiments(engine, flt, order)
    assert fragment in err.value.message


# --- registry -----------------------------------------------------------------------
def models(engine: Engine, flt: str = "", order: Sequence[str] | None = None) -> list[str]:
    stmt = registered_model_search_select(flt, list(order or []), 100, 0)
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def versions(engine: Engine, flt: str = "", order: Sequence[str] | None = None) -> list[str]:
    stmt = model_version_search_select(flt, list(order or []), 100, 0)
    with engine.connect() as conn:
        return [f"{n}/{v}" for n, v in conn.execute(stmt)]


PROMPT = "tags.`mlflow.prompt.is_prompt`"


@pytest.mark.parametrize(
    ("flt", "order", "expected"),
    [
        ("", None, ["alpha-model", "beta-model"]),  # prompts hidden
        (f"{PROMPT} != 'true'", None, ["alpha-model", "beta-model"]),
        (f"{PROMPT} = 'true'", None, ["prompt-1"]),
        ("name LIKE 'a%'", None, ["alpha-model"]),
        ("name ILIKE '%MODEL'", None, ["alpha-model", "beta-model"]),
        ("name IN ('beta-model', 'prompt-1')", None, ["beta-model"]),
        ("tags.team = 'ml'", None, ["alpha-model"]),
        ("tags.team != 'ml'", None, []),
        ("", ["last_updated_timestamp ASC"], ["beta-model", "alpha-model"]),
        ("", ["timestamp DESC"], ["alpha-model", "beta-model"]),
        ("", ["creation_timestamp DESC"], ["beta-model", "alpha-model"]),
        ("", ["name DESC"], ["beta-model", "alpha-model"]),
    ],
)
def test_registered_model_search(
    engine: Engine, flt: str, order: list[str] | None, expected: list[str]
) -> None:
    assert models(engine, flt, order) == expected


@pytest.mark.parametrize(
    ("flt", "order", "expected"),
    [
        ("", None, ["alpha-model/2", "beta-model/1", "alpha-model/1"]),  # newest update first
        ("", ["name ASC"], ["alpha-model/2", "alpha-model/1", "beta-model/1"]),
        ("", ["version_number ASC"], ["alpha-model/1", "beta-model/1", "alpha-model/2"]),
        (
            "",
            ["creation_timestamp DESC", "name DESC"],
            ["alpha-model/2", "beta-model/1", "alpha-model/1"],
        ),
        ("name = 'beta-model'", None, ["beta-model/1"]),  # the deleted version 2 never matches
        (f"run_id = '{RUN['r1']}'", None, ["beta-model/1", "alpha-model/1"]),
        (f"run_id IN ('{RUN['r2']}', '{RUN['r3']}')", None, ["alpha-model/2"]),
        ("version_number > 1", None, ["alpha-model/2"]),
        ("version_number = '1'", None, ["beta-model/1", "alpha-model/1"]),
        ("source_path LIKE 's3://alpha-model/%'", None, ["alpha-model/2", "alpha-model/1"]),
        ("tags.stage = 'Prod'", None, ["alpha-model/2"]),
        ("tags.stage LIKE 'prod'", None, []),
        (f"{PROMPT} = 'true'", None, ["prompt-1/1"]),
    ],
)
def test_model_version_search(
    engine: Engine, flt: str, order: list[str] | None, expected: list[str]
) -> None:
    assert versions(engine, flt, order) == expected


@pytest.mark.parametrize(
    ("search", "flt", "order", "fragment"),
    [
        (models, "metrics.a > 1", None, "registered models cannot be filtered by metrics"),
        (models, "run_id = 'x'", None, "Invalid attribute key 'run_id'"),
        (models, "", ["version_number"], "cannot order by version_number"),
        (versions, "version_number > 1.5", None, "version_number needs an integer value"),
        (versions, "source_path IN ('a')", None, ""),
        (versions, "params.x = '1'", None, "model versions cannot be filtered by params"),
        (versions, "", ["name", "name DESC"], "duplicate order_by field"),
    ],
)
def test_bad_registry_search(
    engine: Engine, search: Any, flt: str, order: list[str] | None, fragment: str
) -> None:
    if not fragment:  # accepted: IN works on every string attribute
        assert search(engine, flt, order) == []
        return
    with pytest.raises(InvalidParameterValue) as err:
        search(engine, flt, order)
    assert fragment in err.value.message
