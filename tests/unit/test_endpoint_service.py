"""EndpointService on each metadata store: names, YAML, keys and traffic."""

from __future__ import annotations

import pytest

from lapis.endpoints.control.endpoints import EndpointService
from lapis.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from lapis.specs.endpoint import (
    name_problem,
    parse_endpoint,
    parse_traffic_args,
    validate_traffic,
)
from lapis.specs.yaml_lines import load
from lapis.store.sql.engine import Database

YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json
name: my-endpoint
auth_mode: key
description: scores things
tags: {a: b}
traffic: {}
"""


@pytest.fixture
def svc(database: Database) -> EndpointService:
    return EndpointService(database)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ab", "3 to 32 characters"),
        ("a" * 33, "3 to 32 characters"),
        ("1abc", "start with a letter"),
        ("-abc", "start with a letter"),
        ("ab_c", "letters, digits and '-'"),
        ("abc-", "end with a letter or digit"),
    ],
)
def test_name_rules_say_which_rule_failed(name: str, rule: str) -> None:
    problem = name_problem(name)
    assert problem is not None and rule in problem


@pytest.mark.parametrize("name", ["abc", "my-endpoint-1", "A" * 32, "e2e-Test"])
def test_valid_names(name: str) -> None:
    assert name_problem(name) is None


def test_create_from_yaml(svc: EndpointService) -> None:
    e = svc.create(load(YAML, "endpoint.yml"), created_by="alice")
    assert e.name == "my-endpoint" and e.auth_mode == "key"
    assert e.tags == {"a": "b"} and e.traffic == {} and e.provisioning_state == "Succeeded"
    got = svc.get("MY-ENDPOINT")
    assert got.description == "scores things" and got.created_by == "alice"
    view = svc.describe(got, "http://h:1/")
    assert view.scoring_uri == "http://h:1/api/v1/endpoints/my-endpoint/score"
    assert "primary_key" not in view.model_dump() and [x.name for x in svc.list()] == [
        "my-endpoint"
    ]


def test_duplicate_is_case_insensitive(svc: EndpointService) -> None:
    svc.create({"name": "dup-ep"})
    with pytest.raises(ResourceAlreadyExists, match="already exists"):
        svc.create({"name": "DUP-EP"})


def test_bad_name_in_yaml_names_file_and_line(svc: EndpointService) -> None:
    with pytest.raises(InvalidParameterValue, match=r"ep\.yml:2: .*must start with a letter"):
        svc.create(load("auth_mode: key\nname: 9lives\n", "ep.yml"))


def test_unsupported_auth_mode_names_supported_values(svc: EndpointService) -> None:
    with pytest.raises(InvalidParameterValue, match=r"ep\.yml:2: .*use 'key' or 'aml_token'"):
        svc.create(load("name: abc\nauth_mode: aad_token\n", "ep.yml"))


def test_unknown_key_names_file_line_and_key() -> None:
    with pytest.raises(InvalidParameterValue, match=r"ep\.yml:3: 'identity' is not an online"):
        parse_endpoint(load("name: abc\nauth_mode: key\nidentity: {}\n", "ep.yml"))


def test_missing_name_and_malformed_yaml() -> None:
    with pytest.raises(InvalidParameterValue, match="'name' is required"):
        parse_endpoint(load("auth_mode: key\n", "ep.yml"))
    with pytest.raises(InvalidParameterValue, match=r"ep\.yml:\d+: malformed YAML"):
        load("name: [abc\n", "ep.yml")


def test_keys_generated_regenerated_checked(svc: EndpointService) -> None:
    svc.create({"name": "keyed"})
    keys = svc.get_credentials("keyed")
    primary, secondary = keys["primaryKey"], keys["secondaryKey"]
    assert primary != secondary and len(primary) >= 40
    assert svc.check_key("keyed", primary) and svc.check_key("KEYED", secondary)
    assert not svc.check_key("keyed", "nope") and not svc.check_key("keyed", "")
    assert not svc.check_key("missing", primary)

    after = svc.regenerate_key("keyed", "secondary")
    assert after["primaryKey"] == primary and after["secondaryKey"] != secondary
    assert not svc.check_key("keyed", secondary) and svc.check_key("keyed", after["secondaryKey"])
    again = svc.regenerate_key("keyed", "Primary")
    assert again["primaryKey"] != primary and again["secondaryKey"] == after["secondaryKey"]
    with pytest.raises(InvalidParameterValue, match="primary or secondary"):
        svc.regenerate_key("keyed", "tertiary")


def test_traffic_validation(svc: EndpointService) -> None:
    assert validate_traffic({"blue": 90, "green": 10}) == {"blue": 90, "green": 10}
    assert validate_traffic({"blue": 0}) == {"blue": 0}
    assert parse_traffic_args(["blue=90", "green=10"]) == {"blue": 90, "green": 10}
    assert parse_traffic_args(["blue=90 green=10"]) == {"blue": 90, "green": 10}
    with pytest.raises(InvalidParameterValue, match="total 100"):
        validate_traffic({"blue": 90, "green": 20})
    with pytest.raises(InvalidParameterValue, match="0 to 100"):
        validate_traffic({"blue": 101})
    with pytest.raises(InvalidParameterValue, match="0 to 100"):
        validate_traffic({"blue": 50.5, "green": 49.5})
    with pytest.raises(InvalidParameterValue, match="DEPLOYMENT=PERCENT"):
        parse_traffic_args(["blue"])
    with pytest.raises(InvalidParameterValue, match="at most 50"):
        validate_traffic({"green": 60}, "mirror_traffic")
    with pytest.raises(InvalidParameterValue, match=r"ep\.yml:2: traffic must total 100"):
        parse_endpoint(load("name: abc\ntraffic: {blue: 50}\n", "ep.yml"))

    svc.create({"name": "split"})
    assert svc.set_traffic("split", {"blue": 90, "green": 10}).traffic == {"blue": 90, "green": 10}
    e = svc.update("split", {"mirror_traffic": {"green": 10}, "description": "d"})
    assert e.mirror_traffic == {"green": 10} and e.traffic == {"blue": 90, "green": 10}
    with pytest.raises(InvalidParameterValue, match="cannot be renamed"):
        svc.update("split", {"name": "other"})


def test_delete_and_missing(svc: EndpointService) -> None:
    svc.create({"name": "gone-soon"})
    svc.delete("Gone-Soon")
    with pytest.raises(ResourceDoesNotExist, match="does not exist"):
        svc.get("gone-soon")
    assert not svc.check_key("gone-soon", "x")
