"""No catalog provider id is written in the package outside `providers/` and the catalog (design §3).

Adding a provider = one catalog entry + one folder; an id spelled anywhere else is a branch or a
table that the next provider would have to edit too. The scan reads the source with `ast`, so it
sees plain strings, f-string parts, bytes, names, attributes, keyword arguments and imports, and
comments through a word search; docstrings may name providers in prose, but not by id.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.catalog import load_catalog

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "common" / "integrations"
# Where provider ids belong.
ALLOWED = ("providers", "catalog")


def catalog_ids() -> list[str]:
    return sorted((spec.id for spec in load_catalog()), key=len, reverse=True)


def id_pattern(ids: list[str]) -> re.Pattern[str]:
    """An id as a whole word: `ghl` in "LOOKUP#ghl#location", never `ghl` inside `ghlx`."""
    return re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, ids)) + r")(?![A-Za-z0-9_])")


def core_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] not in ALLOWED)


def texts_of(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every string, name, attribute, keyword, import and comment of a module."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            value = node.value
            yield node.lineno, value.decode("latin-1") if isinstance(value, bytes) else value
        elif isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.keyword) and node.arg is not None:
            yield node.lineno, node.arg
        elif isinstance(node, ast.Import | ast.ImportFrom):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for name in [alias.name for alias in node.names] + ([module] if module else []):
                yield node.lineno, name.replace(".", " ")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def provider_ids_in(source: str, pattern: re.Pattern[str]) -> list[tuple[int, str]]:
    return [(line, found.group(1)) for line, text in texts_of(source) for found in pattern.finditer(text)]


def test_no_provider_id_is_written_outside_providers_and_the_catalog() -> None:
    pattern = id_pattern(catalog_ids())
    modules = core_modules()
    assert len(modules) > 40, "the scan must cover the whole core"

    found = [
        f"{path.relative_to(PACKAGE)}:{line}: {provider}"
        for path in modules
        for line, provider in provider_ids_in(path.read_text(encoding="utf-8"), pattern)
    ]

    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        'KIND = "ghl"\n',
        "KIND = 'hubspot'\n",
        'key = f"LOOKUP#slack#{team}"\n',
        'raw = b"calendly"\n',
        "if spec.id == 'google_calendar_oneway':\n    pass\n",
        "from integrations.providers.gmail import webhook\n",
        "call(outlook_calendar=1)\n",
        "x = 1  # the icloud_calendar quirk\n",
    ],
)
def test_the_scan_finds_an_id_however_it_is_written(source: str) -> None:
    assert provider_ids_in(source, id_pattern(catalog_ids())) != []


def test_the_scan_leaves_longer_words_alone() -> None:
    source = 'name = "slacker"\nslack_ish = "ghl_sandbox"  # gmail2\n'
    assert provider_ids_in(source, id_pattern(catalog_ids())) == []
