"""The Lambda layer installs exactly the runtime dependencies the project declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_layer_requirements_match_project_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    layer = [
        line.strip()
        for line in (ROOT / "layers/common/requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert sorted(layer) == sorted(project)


def test_no_dependency_replaces_urllib3_under_boto3() -> None:
    import urllib3

    # urllib3-future (pulled in by caldav 2+) installs over urllib3 and adds an async stack.
    assert not hasattr(urllib3, "_async")
