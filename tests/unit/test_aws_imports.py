"""Only the store adapters and the composition root talk to AWS: nothing else imports its SDK."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "common" / "integrations"
# store/ holds every adapter; container.py composes them and aws.py makes the clients it hands them.
ALLOWED = {PACKAGE / "store", PACKAGE / "container.py", PACKAGE / "aws.py"}
AWS_SDK = ("boto3", "botocore", "mypy_boto3_")


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _allowed(path: Path) -> bool:
    return any(path == allowed or allowed in path.parents for allowed in ALLOWED)


def aws_sdk_importers() -> dict[str, list[str]]:
    """Every module of the package or a function folder that imports the AWS SDK, outside ALLOWED."""
    found: dict[str, list[str]] = {}
    for path in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "functions").rglob("*.py")]):
        if _allowed(path):
            continue
        sdk = [name for name in _imported_modules(path) if name.startswith(AWS_SDK)]
        if sdk:
            found[str(path.relative_to(ROOT))] = sdk
    return found


def test_nothing_outside_the_store_and_the_composition_root_imports_the_aws_sdk() -> None:
    assert aws_sdk_importers() == {}


def test_the_scan_sees_imports_inside_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mypy_boto3_sqs import SQSClient\n"
        "def f():\n    import botocore.exceptions\n"
    )

    assert _imported_modules(module) == ["typing", "mypy_boto3_sqs", "botocore.exceptions"]


def test_the_store_itself_is_where_the_sdk_is_used() -> None:
    store_sdk = [p for p in (PACKAGE / "store").rglob("*.py") if "botocore" in " ".join(_imported_modules(p))]

    assert store_sdk, "the scan would pass vacuously if it read nothing"
