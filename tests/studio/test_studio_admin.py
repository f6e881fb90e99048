"""Users, roles, the audit log and one's own tokens in a real browser.

An Owner creates a user with a password and a role on the Admin page, assigns a
second role and disables and enables them; that user signs in with the password,
sees only what a Reader may see (no Admin menu, no compute buttons), and makes a
token on their account page that is shown once; the audit log shows it all.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from studiokit import Studio


def test_owner_manages_users_and_a_reader_sees_less(studio: Studio, browser: Any) -> None:
    server, page = studio.server, studio.page
    page.on("dialog", lambda d: d.accept())
    name = f"rd{uuid.uuid4().hex[:6]}"
    studio.go("/admin/users")
    assert "Admin" in page.inner_text("nav[aria-label=Main]")
    page.fill("#new-user-name", name)
    page.check("#new-user input[value=Reader]")
    page.fill("#new-user-password", "correct horse battery")
    page.click("#new-user button[type=submit]")
    row = f"#users-table tr[data-user={name}]"
    page.wait_for_selector(row)
    assert "Reader" in page.inner_text(f"{row} td:nth-child(2)")
    assert "enabled" in page.inner_text(row)
    studio.shot("admin-users")
    page.select_option(f"{row} select", "AzureML Compute Operator")
    page.click(f"{row} form button[type=submit]")
    roles = f"{row} td:nth-child(2)"
    page.wait_for_function(
        f"document.querySelector('{roles}').innerText.includes('AzureML Compute Operator')"
    )
    page.click(f"{row} button:has-text('Disable')")
    page.wait_for_function(f"document.querySelector('{row}').innerText.includes('disabled')")
    page.click(f"{row} button:has-text('Enable')")
    page.wait_for_function(f"document.querySelector('{row}').innerText.includes('enabled')")
    page.click(f"{row} button[aria-label='Take AzureML Compute Operator from {name}']")
    page.wait_for_function(
        f"!document.querySelector('{roles}').innerText.includes('AzureML Compute Operator')"
    )

    # the new user signs in with the password, in a browser of their own
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        theirs = context.new_page()
        theirs.set_default_timeout(20_000)
        theirs.goto(f"{server.url}/signin")
        theirs.fill("#username", name)
        theirs.fill("#password", "wrong password")
        theirs.click("#password-signin button[type=submit]")
        assert "wrong password" in theirs.inner_text("main")
        theirs.fill("#password", "correct horse battery")
        theirs.click("#password-signin button[type=submit]")
        theirs.wait_for_url(f"{server.url}/")
        menu = theirs.inner_text("nav[aria-label=Main]")
        assert "Admin" not in menu and "Compute" in menu
        theirs.goto(f"{server.url}/compute")
        assert theirs.query_selector("#new-compute") is None  # a Reader cannot create one
        refused = theirs.goto(f"{server.url}/admin/users")
        assert refused is not None and refused.status == 403
        assert "workspaces/users/read" in theirs.inner_text("main")
        theirs.goto(f"{server.url}/account")
        theirs.fill("#token-name", "from-the-studio")
        theirs.click("#new-token-form button[type=submit]")
        theirs.wait_for_selector("#new-token code.secret")
        secret = theirs.inner_text("#new-token code.secret").strip()
        assert re.fullmatch(r"lapis_\S+", secret)
        who = httpx.get(
            f"{server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}
        ).json()
        assert who["name"] == name and who["roles"] == ["Reader"]
        theirs.goto(f"{server.url}/account")
        assert secret not in theirs.content()  # shown once, never again
        theirs.click("form[action='/signout'] button")
        theirs.wait_for_url("**/signin")
    finally:
        context.close()

    studio.go(f"/admin/audit?user={name}")
    audit = page.inner_text("#audit-table")
    assert "/account/tokens" in audit and "signin" not in audit.lower().split(name)[0]
    studio.go("/admin/audit?user=admin")
    assert "workspaces/users/write" in page.inner_text("#audit-table")
    studio.shot("admin-audit")
    studio.go("/admin/roles")
    assert "AzureML Data Scientist" in page.inner_text("main")
    studio.shot("admin-roles")
