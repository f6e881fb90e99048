"""The registry service on a real (temporary) SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from lapis.entities.auth import Principal
from lapis.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from lapis.registry.mlflow_compat import model_version_json, registered_model_json
from lapis.registry.service import RegistryService
from lapis.store.sql.engine import Database
from lapis.store.sql.tables import logged_model_tags, logged_models
from lapis.tracking.service import TrackingService
from lapis.util import now_ms

ALICE = Principal(user_id="u" * 32, name="alice", roles=("Owner",))


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[RegistryService]:
    db = Database(f"sqlite:///{tmp_path / 'lapis.db'}")
    db.migrate()
    tracking = TrackingService(db)
    tracking.ensure_default_experiment()
    yield RegistryService(tracking)
    db.dispose()


def _logged_model(svc: RegistryService, run_id: str | None = None) -> str:
    model_id = "m-" + "a" * 32
    with svc.db.write() as conn:
        conn.execute(
            insert(logged_models).values(
                model_id=model_id,
                experiment_id=0,
                name="model",
                artifact_location=f"mlflow-artifacts:/0/models/{model_id}/artifacts",
                creation_timestamp=now_ms(),
                last_updated_timestamp=now_ms(),
                status="READY",
                source_run_id=run_id,
            )
        )
    return model_id


def _versions(svc: RegistryService, name: str, n: int, source: str = "s3://b/m") -> None:
    for _ in range(n):
        svc.create_model_version(name, source)


# --- registered models ----------------------------------------------------------
def test_create_get_and_duplicate(svc: RegistryService) -> None:
    rm = svc.create_registered_model("m", tags={"team": "x"}, description="d", principal=ALICE)
    assert (rm.name, rm.description, rm.tags, rm.created_by) == (
        "m",
        "d",
        {"team": "x"},
        ALICE.name,
    )
    assert rm.creation_timestamp == rm.last_updated_timestamp > 0
    assert svc.get_registered_model("m").tags == {"team": "x"}
    with pytest.raises(
        ResourceAlreadyExists, match=r"Registered Model \(name=m\) already exists\."
    ):
        svc.create_registered_model("m")
    with pytest.raises(ResourceDoesNotExist, match="Registered Model with name=nope not found"):
        svc.get_registered_model("nope")


@pytest.mark.parametrize("name", ["", "  ", "a/b", "a:b", "..", "./a", "a" * 257, None, 3])
def test_bad_model_names(svc: RegistryService, name: object) -> None:
    with pytest.raises(InvalidParameterValue):
        svc.create_registered_model(name)


def test_update_and_tags(svc: RegistryService) -> None:
    svc.create_registered_model("m")
    assert svc.update_registered_model("m", "new").description == "new"
    svc.set_registered_model_tag("m", "k", "v")
    svc.set_registered_model_tag("m", "k", "v2")
    assert svc.get_registered_model("m").tags == {"k": "v2"}
    svc.delete_registered_model_tag("m", "k")
    svc.delete_registered_model_tag("m", "k")  # a missing tag is fine, as in MLflow
    assert svc.get_registered_model("m").tags == {}
    with pytest.raises(InvalidParameterValue):
        svc.set_registered_model_tag("m", "../x", "v")
    with pytest.raises(ResourceDoesNotExist):
        svc.set_registered_model_tag("nope", "k", "v")


def test_rename_moves_versions_tags_and_aliases(svc: RegistryService) -> None:
    svc.create_registered_model("old", tags={"t": "1"})
    _versions(svc, "old", 2)
    svc.set_model_version_tag("old", "2", "vt", "x")
    svc.set_alias("old", "champion", 2)
    rm = svc.rename_registered_model("old", "new")
    assert rm.name == "new" and rm.tags == {"t": "1"} and rm.aliases == {"champion": 2}
    mv = svc.get_version_by_alias("new", "champion")
    assert (mv.name, mv.version, mv.tags, mv.aliases) == ("new", 2, {"vt": "x"}, ["champion"])
    with pytest.raises(ResourceDoesNotExist):
        svc.get_registered_model("old")
    with pytest.raises(ResourceDoesNotExist):
        svc.get_model_version("old", 1)
    assert svc.create_model_version("new", "s3://b/m").version == 3
    svc.create_registered_model("other")
    with pytest.raises(ResourceAlreadyExists, match=r"\(name=other\) already exists"):
        svc.rename_registered_model("new", "other")
    with pytest.raises(InvalidParameterValue, match="new_name"):
        svc.rename_registered_model("new", "")


def test_delete_model_clears_everything(svc: RegistryService) -> None:
    svc.create_registered_model("m", tags={"t": "1"})
    _versions(svc, "m", 2)
    svc.set_alias("m", "a", 1)
    svc.set_model_version_tag("m", 1, "k", "v")
    svc.delete_registered_model("m")
    with pytest.raises(ResourceDoesNotExist):
        svc.delete_registered_model("m")
    svc.create_registered_model("m")
    mv = svc.create_model_version("m", "s3://b/m")
    assert (mv.version, mv.tags, mv.aliases) == (1, {}, [])
    assert svc.get_registered_model("m").tags == {}


# --- model versions -------------------------------------------------------------
def test_versions_number_status_and_delete(svc: RegistryService) -> None:
    svc.create_registered_model("m")
    mv = svc.create_model_version(
        "m", "s3://b/m", tags={"a": "b"}, description="d", run_link="http://x", principal=ALICE
    )
    assert (mv.version, mv.status, mv.current_stage, mv.user_id) == (1, "READY", "None", "alice")
    assert mv.tags == {"a": "b"} and mv.description == "d" and mv.run_link == "http://x"
    _versions(svc, "m", 2)
    svc.set_alias("m", "prod", 3)
    svc.delete_model_version("m", "3")
    with pytest.raises(
        ResourceDoesNotExist, match=r"Model Version \(name=m, version=3\) not found"
    ):
        svc.get_model_version("m", 3)
    assert svc.get_registered_model("m").aliases == {}
    assert svc.create_model_version("m", "s3://b/m").version == 4  # numbers are never reused
    assert svc.update_model_version("m", 1, "changed").description == "changed"
    with pytest.raises(InvalidParameterValue, match="must be an integer, got 'x'"):
        svc.get_model_version("m", "x")
    with pytest.raises(ResourceDoesNotExist):
        svc.create_model_version("nope", "s3://b/m")


def test_version_tags(svc: RegistryService) -> None:
    svc.create_registered_model("m")
    _versions(svc, "m", 1)
    svc.set_model_version_tag("m", "1", "k", "v")
    assert svc.get_model_version("m", 1).tags == {"k": "v"}
    svc.delete_model_version_tag("m", "1", "k")
    assert svc.get_model_version("m", 1).tags == {}
    with pytest.raises(ResourceDoesNotExist):
        svc.set_model_version_tag("m", "2", "k", "v")


def test_stages_and_latest_versions(svc: RegistryService) -> None:
    svc.create_registered_model("m")
    _versions(svc, "m", 4)
    assert svc.transition_stage("m", 1, "production").current_stage == "Production"
    svc.transition_stage("m", 2, "Staging")
    svc.transition_stage("m", 3, "PRODUCTION", archive_existing_versions=True)
    assert svc.get_model_version("m", 1).current_stage == "Archived"
    latest = {mv.current_stage: mv.version for mv in svc.get_latest_versions("m")}
    assert latest == {"Archived": 1, "Staging": 2, "Production": 3, "None": 4}
    assert [mv.version for mv in svc.get_latest_versions("m", ["production"])] == [3]
    assert {mv.version for mv in svc.get_registered_model("m").latest_versions} == {1, 2, 3, 4}
    with pytest.raises(InvalidParameterValue, match="Invalid Model Version stage: Gold"):
        svc.transition_stage("m", 1, "Gold")
    with pytest.raises(InvalidParameterValue, match="not an Active stage"):
        svc.transition_stage("m", 1, "Archived", archive_existing_versions=True)
    with pytest.raises(InvalidParameterValue):
        svc.get_latest_versions("m", ["nope"])


# --- aliases --------------------------------------------------------------------
def test_aliases(svc: RegistryService) -> None:
    svc.create_registered_model("m")
    _versions(svc, "m", 2)
    svc.set_alias("m", "champion", "1")
    assert svc.get_version_by_alias("m", "champion").version == 1
    svc.set_alias("m", "champion", 2)
    mv = svc.get_version_by_alias("m", "champion")
    assert (mv.version, mv.aliases) == (2, ["champion"])
    assert svc.get_version_by_alias("m", "latest").version == 2
    assert svc.get_registered_model("m").aliases == {"champion": 2}
    svc.delete_alias("m", "champion")
    svc.delete_alias("m", "champion")
    with pytest.raises(InvalidParameterValue, match="Registered model alias champion not found"):
        svc.get_version_by_alias("m", "champion")
    with pytest.raises(ResourceDoesNotExist):
        svc.set_alias("m", "a", 9)
    with pytest.raises(ResourceDoesNotExist):
        svc.get_version_by_alias("nope", "a")


@pytest.mark.parametrize(
    ("alias", "match"),
    [
        ("latest", "'latest' alias name"),
        ("LATEST", "'latest' alias name"),
        ("v1", "Version alias name 'v1' is reserved"),
        ("V12", "reserved"),
        ("a b", "Invalid alias name"),
        ("a/b", "Invalid alias name"),
        ("", "cannot be empty"),
        ("x" * 256, "exceeds the maximum length"),
    ],
)
def test_bad_aliases(svc: RegistryService, alias: str, match: str) -> None:
    svc.create_registered_model("m")
    _versions(svc, "m", 1)
    with pytest.raises(InvalidParameterValue, match=match):
        svc.set_alias("m", alias, 1)


def test_latest_alias_without_versions(svc: RegistryService) -> None:
    svc.create_registered_model("m")
    with pytest.raises(ResourceDoesNotExist, match="Latest version not found for model m"):
        svc.get_version_by_alias("m", "latest")


# --- sources and download URIs ----------------------------------------------------
def test_logged_model_source(svc: RegistryService) -> None:
    run = svc.tracking.create_run(0)
    model_id = _logged_model(svc, run.info.run_id)
    svc.create_registered_model("m")
    mv = svc.create_model_version("m", f"models:/{model_id}", model_id=model_id)
    assert mv.source == f"models:/{model_id}" and mv.model_id == model_id
    assert mv.run_id == run.info.run_id  # inherited from the logged model
    assert svc.get_download_uri("m", 1) == f"mlflow-artifacts:/0/models/{model_id}/artifacts"
    svc.create_model_version("m", f"models:/{model_id}", model_id=model_id)
    with svc.db.read() as conn:
        tag = conn.execute(
            select(logged_model_tags.c.value).where(
                logged_model_tags.c.model_id == model_id,
                logged_model_tags.c.key == "mlflow.modelVersions",
            )
        ).scalar_one()
    assert json.loads(tag) == [{"name": "m", "version": 1}, {"name": "m", "version": 2}]
    with pytest.raises(InvalidParameterValue, match="model_id request parameter"):
        svc.create_model_version("m", f"models:/{model_id}", model_id="m-other")


def test_unknown_logged_model_source_is_kept(svc: RegistryService) -> None:
    svc.create_registered_model("m")
    mv = svc.create_model_version("m", "models:/m-123", model_id="m-123")
    assert svc.get_download_uri("m", mv.version) == "models:/m-123"


def test_registered_version_source(svc: RegistryService) -> None:
    svc.create_registered_model("a")
    svc.create_model_version("a", "s3://b/a", run_id="r1")
    svc.set_alias("a", "best", 1)
    svc.create_registered_model("b")
    mv = svc.create_model_version("b", "models:/a@best")
    assert (mv.source, mv.run_id) == ("models:/a/1", "r1")
    assert svc.get_download_uri("b", 1) == "s3://b/a"
    with pytest.raises(InvalidParameterValue, match="must match"):
        svc.create_model_version("b", "models:/a/1", run_id="r2")
    with pytest.raises(ResourceDoesNotExist):
        svc.create_model_version("b", "models:/a/7")


def test_run_and_proxied_sources(svc: RegistryService) -> None:
    run = svc.tracking.create_run(0)
    rid = run.info.run_id
    svc.create_registered_model("m")
    mv = svc.create_model_version("m", f"runs:/{rid}/model")
    assert mv.run_id == rid and svc.get_download_uri("m", 1) == f"runs:/{rid}/model"
    with pytest.raises(InvalidParameterValue, match="run_id request parameter"):
        svc.create_model_version("m", f"runs:/{rid}/model", run_id="f" * 32)
    inside = f"{run.info.artifact_uri}/model"
    assert svc.create_model_version("m", inside, run_id=rid).source == inside
    with pytest.raises(InvalidParameterValue, match="run_id request parameter"):
        svc.create_model_version("m", "mlflow-artifacts:/0/other/artifacts/model", run_id=rid)
    with pytest.raises(InvalidParameterValue, match="run_id request parameter"):
        svc.create_model_version("m", inside)
    with pytest.raises(InvalidParameterValue, match="relative path"):
        svc.create_model_version("m", "s3://b/../../etc")
    with pytest.raises(InvalidParameterValue, match="relative path"):
        svc.create_model_version("m", "file:///tmp/%2e%2e/x")
    with pytest.raises(InvalidParameterValue, match="source"):
        svc.create_model_version("m", "")


# --- JSON shapes ----------------------------------------------------------------
def test_json_shapes(svc: RegistryService) -> None:
    svc.create_registered_model("m", description="d")
    svc.create_model_version("m", "s3://b/m", tags={"k": "v"})
    svc.set_alias("m", "champion", 1)
    mv = model_version_json(svc.get_model_version("m", 1))
    assert mv["version"] == "1" and mv["aliases"] == ["champion"]
    assert mv["tags"] == [{"key": "k", "value": "v"}] and mv["status"] == "READY"
    assert "run_id" not in mv and "description" not in mv and "model_id" not in mv
    rm = registered_model_json(svc.get_registered_model("m"))
    assert rm["aliases"] == [{"alias": "champion", "version": "1"}]
    assert rm["description"] == "d" and [v["version"] for v in rm["latest_versions"]] == ["1"]
    assert None not in rm.values() and None not in mv.values()


# --- search -----------------------------------------------------------------------
def test_search_registered_models(svc: RegistryService) -> None:
    for name in ("alpha", "beta", "gamma", "alps"):
        svc.create_registered_model(name)
    found, token = svc.search_registered_models("name LIKE 'al%'")
    assert sorted(m.name for m in found) == ["alpha", "alps"] and token is None
    names: list[str] = []
    page, token = svc.search_registered_models(max_results=3, order_by=["name ASC"])
    names += [m.name for m in page]
    assert token is not None
    page, token = svc.search_registered_models(
        max_results=3, order_by=["name ASC"], page_token=token
    )
    names += [m.name for m in page]
    assert names == ["alpha", "alps", "beta", "gamma"] and token is None
    with pytest.raises(InvalidParameterValue, match="at most 1000"):
        svc.search_registered_models(max_results=1001)


def test_search_model_versions(svc: RegistryService) -> None:
    svc.create_registered_model("a")
    svc.create_registered_model("b")
    svc.create_model_version("a", "s3://x", run_id="r1")
    svc.create_model_version("a", "s3://x", run_id="r2")
    svc.create_model_version("b", "s3://x", run_id="r1")
    svc.create_model_version("a", "s3://x", run_id="r1")
    svc.delete_model_version("a", 3)
    found, _ = svc.search_model_versions("name='a'")
    assert sorted(mv.version for mv in found) == [1, 2]  # the deleted version is not listed
    found, _ = svc.search_model_versions("run_id='r1'")
    assert sorted((mv.name, mv.version) for mv in found) == [("a", 1), ("b", 1)]
    page, token = svc.search_model_versions(max_results=2)
    rest, token2 = svc.search_model_versions(max_results=2, page_token=token)
    assert token is not None and token2 is None and len(page) == 2 and len(rest) == 1
