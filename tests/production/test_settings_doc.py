"""docs/settings.md documents every setting the code has, and nothing else, as
`hub settings --markdown` prints it; the README and the deployment files name only settings
that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "settings.md"
REGENERATE = "run `hub settings --markdown > docs/settings.md`"
VARIABLE = re.compile(r"\bHUB_[A-Z][A-Z0-9_]*\b")


def code_names() -> set[str]:
    return {f"HUB_{name.upper()}" for name in Settings.model_fields}


def names_a_setting(name: str) -> bool:
    """A setting's variable, or a family of them written as HUB_SMTP_*."""
    if name.endswith("_"):
        return any(known.startswith(name) for known in code_names())
    return name in code_names()


def documented_names() -> set[str]:
    return set(re.findall(r"^\| `(HUB_[A-Z0-9_]+)` \|", DOC.read_text(), flags=re.MULTILINE))


def test_every_setting_in_the_code_is_documented_and_every_documented_one_exists() -> None:
    missing = sorted(code_names() - documented_names())
    stale = sorted(documented_names() - code_names())
    assert not missing, f"settings missing from docs/settings.md: {missing}; {REGENERATE}"
    assert not stale, f"docs/settings.md documents settings the code lacks: {stale}; {REGENERATE}"


def test_the_document_is_what_the_command_prints_now() -> None:
    printed = CliRunner().invoke(app, ["settings", "--markdown"])
    assert printed.exit_code == 0, printed.output
    assert DOC.read_text() == printed.output, f"docs/settings.md is out of date: {REGENERATE}"


def test_the_reference_does_not_depend_on_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_PORT", "9999")
    monkeypatch.setenv("HUB_ENVIRONMENT", "production")  # and no secrets: still prints
    printed = CliRunner().invoke(app, ["settings", "--markdown"])
    assert printed.exit_code == 0 and printed.output == DOC.read_text()


def test_every_setting_says_what_it_does() -> None:
    undescribed = [n for n, f in Settings.model_fields.items() if not (f.description or "").strip()]
    assert not undescribed, f"give these settings a description in hub/config.py: {undescribed}"


def test_each_row_gives_type_default_and_meaning() -> None:
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `HUB_")]
    assert len(rows) == len(Settings.model_fields)
    for row in rows:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
        assert len(cells) == 4 and all(cells), row
    secret_row = next(row for row in rows if row.startswith("| `HUB_SECRET_KEY`"))
    assert "secret, at least 32 characters in production" in secret_row
    assert "development-only" not in DOC.read_text()  # secret defaults are never printed


@pytest.mark.parametrize(
    "path", ["README.md", "docs", ".env.example", "compose.yaml"], ids=lambda p: p
)
def test_the_readme_docs_and_deployment_files_name_only_real_settings(path: str) -> None:
    target = ROOT / path
    files = sorted(target.glob("*.md")) if target.is_dir() else [target]
    unknown = {
        f"{file.relative_to(ROOT)}: {name}"
        for file in files
        for name in VARIABLE.findall(file.read_text())
        if not names_a_setting(name) and not name.startswith("HUB_TEST_")
    }
    assert not unknown, f"these name no setting of hub/config.py: {sorted(unknown)}"
