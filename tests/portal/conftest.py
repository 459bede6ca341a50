"""Fixtures shared with other test packages: the browser of tests/test_browser.py
(Debian's Chromium and chromedriver, never a downloaded browser) for the portal's
journeys, and the API route table's world for the walk of the portal's pages."""

from tests.accounts.test_route_table import world  # noqa: F401 - a fixture
from tests.test_browser import browser  # noqa: F401 - a fixture
