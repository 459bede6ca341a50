"""The browser fixture of tests/test_browser.py (Debian's Chromium and
chromedriver, never a downloaded browser), for the portal's journeys."""

from tests.test_browser import browser  # noqa: F401 - a fixture
