"""Scoring tokens of aml_token endpoints: signed, bound to one endpoint, short-lived."""

from __future__ import annotations

from lapis.endpoints import tokens


def test_a_token_verifies_for_its_endpoint_until_it_expires() -> None:
    issued = tokens.issue("Churn-EP", "secret", now=1000)
    token = str(issued["accessToken"]).encode()
    assert issued["expiryTimeUtc"] == 1000 + tokens.LIFETIME_S
    assert issued["refreshAfterTimeUtc"] == 1000 + tokens.REFRESH_AFTER_S
    assert tokens.verify(token, "churn-ep", "secret", now=1001)  # names are case-blind
    assert not tokens.verify(token, "churn-ep", "secret", now=1000 + tokens.LIFETIME_S)
    assert not tokens.verify(token, "other-ep", "secret", now=1001)
    assert not tokens.verify(token, "churn-ep", "rotated", now=1001)  # a new primary key


def test_tampered_or_foreign_tokens_are_refused() -> None:
    token = str(tokens.issue("ep", "secret", now=1000)["accessToken"])
    prefix, payload, signature = token.split(".")
    other = str(tokens.issue("ep", "secret", now=9_000_000)["accessToken"]).split(".")[1]
    for bad in (
        f"{prefix}.{other}.{signature}",  # a later expiry under the old signature
        f"{prefix}.{payload}.",
        f"{prefix}.{payload}",
        "secret",
        "lapis-aml.!!!.x",
        "\u00e9t\u00e9",
    ):
        assert not tokens.verify(bad.encode(), "ep", "secret", now=1001), bad
