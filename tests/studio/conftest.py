"""Browser fixtures for the studio: Debian's Chromium driven by Playwright.

Playwright cannot download its own browsers on these machines, so the tests
launch the system Chromium (``make test`` installs it with apt-get when it is
missing). Where it is absent anyway, the tests skip with a message saying so;
CI always has it. Screenshots of every page a test visits are saved under
``test-results/studio/<test>/`` for people to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from studiokit import ARGS, CHROMIUM, RESULTS, Studio, sign_in


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"STUDIO BROWSER TESTS SKIPPED: no Chromium at {CHROMIUM}. "
            "`make test` installs it (apt-get install chromium); CI always runs these."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def studio(browser: Any, lapis_server: Any, request: pytest.FixtureRequest) -> Iterator[Studio]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    sign_in(page, lapis_server)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    try:
        yield Studio(page, lapis_server, RESULTS / name)
    finally:
        context.close()
