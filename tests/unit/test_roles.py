"""Action patterns and role documents: Azure's wildcard rules and helpful refusals."""

from __future__ import annotations

import pytest

from lapis.auth.actions import ACTIONS, matches
from lapis.auth.roles import BUILTIN, parse_role
from lapis.errors import InvalidParameterValue


@pytest.mark.parametrize(
    "pattern,action,expected",
    [
        ("*", "workspaces/jobs/write", True),
        ("workspaces/*/read", "workspaces/experiments/runs/read", True),
        ("workspaces/*/read", "workspaces/read", True),  # a/*/b matches a/b
        ("workspaces/computes/*/write", "workspaces/computes/write", True),
        ("workspaces/computes/*", "workspaces/computes/start/action", True),
        ("workspaces/computes/*", "workspaces/jobs/write", False),
        ("workspaces/jobs/write", "workspaces/jobs/read", False),
        ("Microsoft.MachineLearningServices/workspaces/Jobs/*", "workspaces/jobs/write", True),
        ("workspaces/models/*/read", "workspaces/models/read", True),
        ("*/read", "workspaces/onlineEndpoints/listkeys/action", False),
    ],
)
def test_wildcards_follow_azure(pattern: str, action: str, expected: bool) -> None:
    assert matches(pattern, action) is expected


def test_builtin_roles() -> None:
    reader = BUILTIN["reader"]
    assert all(a.endswith("/read") for a in reader.allowed_actions())
    assert not reader.allows("workspaces/onlineEndpoints/listkeys/action")
    scientist = BUILTIN["azureml data scientist"]
    assert scientist.allows("workspaces/computes/start/action")
    assert not scientist.allows("workspaces/computes/write")
    assert not scientist.allows("workspaces/computes/delete")
    assert not scientist.allows("workspaces/roleAssignments/write")
    operator = BUILTIN["azureml compute operator"]
    assert set(operator.allowed_actions()) == {
        a for a in ACTIONS if a.startswith("workspaces/computes/")
    } | {"workspaces/read"}
    assert len(BUILTIN["owner"].allowed_actions()) == len(ACTIONS)


def test_a_custom_role_in_lapis_and_azure_shapes() -> None:
    role = parse_role(
        "name: Experimenter\nactions: [workspaces/*/read, workspaces/jobs/write]\n"
        "not_actions: [workspaces/models/read]\n"
    )
    assert role.allows("workspaces/jobs/write") and not role.allows("workspaces/models/read")
    azure = parse_role(
        '{"Name": "Ops", "IsCustom": true, "Actions": '
        '["Microsoft.MachineLearningServices/workspaces/computes/*"], "NotActions": [], '
        '"DataActions": [], "AssignableScopes": ["/subscriptions/1"]}',
        "ops.json",
    )
    assert azure.allows("workspaces/computes/delete") and not azure.allows("workspaces/jobs/read")


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("name: X\nactions:\n  - workspaces/jobs/rite\n", "role.yml:3"),
        ("name: X\nactions:\n  - workspaces/jobs/rite\n", "did you mean 'workspaces/jobs/write'"),
        ("name: Owner\nactions: ['*']\n", "built-in role"),
        ("name: X\nactions: []\n", "at least one action"),
        ("name: X\nactoins: ['*']\n", "did you mean 'actions'"),
        ("actions: ['*']\n", "'name' is required"),
        ("name: 9lives\nactions: ['*']\n", "not a role name"),
        ("name: X\nactions: ['*']\nDataActions: [x]\n", "data actions are not supported"),
    ],
)
def test_role_mistakes_name_the_line(text: str, fragment: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        parse_role(text, "role.yml")
    assert fragment in err.value.message
