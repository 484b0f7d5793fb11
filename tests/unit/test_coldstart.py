"""Each function's init runs with the garbage collector paused, and always leaves it running."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = sorted((ROOT / "functions").glob("*/app.py"))


def _statements(path: Path) -> list[ast.stmt]:
    return ast.parse(path.read_text(), filename=str(path)).body


def test_every_function_pauses_the_collector_before_its_other_imports() -> None:
    for path in APPS:
        imports = [s for s in _statements(path) if isinstance(s, ast.Import | ast.ImportFrom)]
        first = next(s for s in imports if not (isinstance(s, ast.ImportFrom) and s.module == "__future__"))

        assert isinstance(first, ast.ImportFrom), path
        assert (first.module, [a.name for a in first.names]) == ("integrations", ["coldstart"]), path


def test_every_function_resumes_the_collector_as_its_last_statement() -> None:
    for path in APPS:
        last = _statements(path)[-1]

        assert isinstance(last, ast.Expr) and ast.unparse(last) == "coldstart.loaded()", path


def test_importing_coldstart_pauses_the_collector_until_loaded() -> None:
    code = (
        "import gc;from integrations import coldstart;paused=not gc.isenabled();"
        "coldstart.loaded();print(paused, gc.isenabled())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(ROOT / "layers" / "common")},
        capture_output=True,
        text=True,
        check=True,
    )

    assert out.stdout.split() == ["True", "True"]


def test_a_function_that_fails_to_load_leaves_the_collector_running(tmp_path: Path) -> None:
    # A fresh interpreter, so this load is the one that takes the pause.
    code = (
        "import gc,sys;from tests.support.functions import load_handler\n"
        "try:\n    load_handler('webhooks')\n"
        "except Exception as exc:\n    print(type(exc).__name__, gc.isenabled())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT}", "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        check=True,
    )

    assert out.stdout.split() == ["SettingsError", "True"]
