"""docs/harbor-api-coverage.md is what scripts/api_coverage.py finds by calling
every operation of Harbor's swagger on a live Berth: it cannot go stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ADMIN, REPO_ROOT, BerthServer

DOC = REPO_ROOT / "docs" / "harbor-api-coverage.md"
ADDITION = "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}"


def survey(server: BerthServer, output: Path) -> str:
    run = subprocess.run(
        [sys.executable, "scripts/api_coverage.py", "--url", server.url, "--output", str(output)],
        cwd=REPO_ROOT,
        env={**server.env, "BERTH_ADMIN_PASSWORD": ADMIN[1]},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return output.read_text()


def test_the_committed_coverage_is_what_live_calls_find(
    fresh_berth: BerthServer, tmp_path: Path
) -> None:
    found = survey(fresh_berth.start(), tmp_path / "coverage.md")

    assert found == DOC.read_text(), "stale: run python scripts/api_coverage.py and commit"
    # A route caught by a broader one is not coverage: the repository route
    # takes …/artifacts/{reference}/scan as a repository name.
    assert f"| POST | `{ADDITION}/scan` | scanArtifact | not served: " in found
    assert f"| GET | `{ADDITION}` | getArtifact | served |" in found
    # Berth's JSON 404 for unknown paths is not coverage either.
    assert "| GET | `/scanners` | listScanners | not served: scanning: " in found
