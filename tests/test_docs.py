"""The documents stay true: README settings table, client error-code table, compose stack."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from service.config import Settings, settings_table
from service.core.errors import CATALOGUE
from service.features import all_features

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|(.*)\|\s*$")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n## ", start + len(heading))
    return text[start : nxt if nxt != -1 else len(text)]


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line]
    assert commands == ["python3 dev.py serve", "python3 dev.py test"]
    assert text.index("```") < text.index("\n## ")  # before any section


def test_readme_settings_table_is_engage_settings_output():
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- settings:start -->\n", 1)[1].split("\n<!-- settings:end -->", 1)[0]
    assert table == settings_table(), "run `uv run engage settings` and paste it into README.md"
    for name in Settings.__struct_fields__:
        assert f"`ENGAGE_{name.upper()}`" in table


def test_readme_keeps_a_features_section():
    text = (ROOT / "README.md").read_text()
    assert "\n## Features\n" in text


def test_every_error_code_is_in_the_client_guide_with_its_status():
    all_features()  # features register their codes at import time
    guide = (ROOT / "frontend-api-spec" / "README.md").read_text()
    rows = {}
    for line in _section(guide, "## Error codes").splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = (int(m.group(2)), m.group(3).strip())
    missing = sorted(set(CATALOGUE) - set(rows))
    assert not missing, f"add these codes to frontend-api-spec/README.md: {missing}"
    stale = sorted(set(rows) - set(CATALOGUE))
    assert not stale, f"these codes are no longer in the catalogue: {stale}"
    for code, (status, meaning) in rows.items():
        assert status == CATALOGUE[code][0], f"{code}: the guide says {status}"
        assert len(meaning) > 10, f"{code}: say what it means and what to do"


def test_compose_stack_parses_and_wires_health_checked_dependencies():
    """Docker is not available where these tests run; this checks the file's structure."""
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert set(services) == {"engage", "postgres", "redis"}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("postgres", "redis", "engage"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["interval"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in services["redis"]["healthcheck"]["test"]
    volume = services["postgres"]["volumes"][0].split(":")
    assert volume[1] == "/var/lib/postgresql/data" and volume[0] in doc["volumes"]

    engage = services["engage"]
    assert engage["build"]["dockerfile"] == "Dockerfile"
    assert engage["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    env = engage["environment"]
    assert env["ENGAGE_ENV"] == "production"
    assert (
        env["ENGAGE_DATABASE_URL"].startswith("postgresql://")
        and "@postgres:5432/" in env["ENGAGE_DATABASE_URL"]
    )
    assert env["ENGAGE_REDIS_URL"].startswith("redis://redis:6379")
    # Required from the caller's environment: compose refuses to start without it.
    assert re.fullmatch(r"\$\{ENGAGE_TOKEN_SECRET:\?.+\}", env["ENGAGE_TOKEN_SECRET"])
    # The credentials in the DSN are the ones the postgres container is created with.
    pg_env = services["postgres"]["environment"]
    user_pw_db = f"{pg_env['POSTGRES_USER']}:{pg_env['POSTGRES_PASSWORD']}@postgres:5432/"
    assert user_pw_db + pg_env["POSTGRES_DB"] == env["ENGAGE_DATABASE_URL"].split("//")[1]


def test_dockerfile_builds_the_locked_service_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    assert text.splitlines()[1].startswith("FROM python:3.11-slim")
    assert 'pip install --no-cache-dir "uv' in text
    assert "uv sync --locked --no-dev" in text
    user_at = text.index("\nUSER ")
    assert "USER root" not in text and text.index("\nCMD ") > user_at
    assert '"engage", "serve", "--host", "0.0.0.0"' in text


def test_every_client_route_is_in_the_client_guide_with_an_example():
    """A mini-program developer never has to read service/: each /v1 operation of openapi.json
    is named in the guide pages, and each page's routes come with a JSON example."""
    import json

    doc = json.loads((ROOT / "frontend-api-spec" / "openapi.json").read_text())
    pages = {p.name: p.read_text() for p in (ROOT / "frontend-api-spec").glob("*.md")}
    guide = "\n".join(pages.values())
    missing = [
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        if path.startswith("/v1/")
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
        and f"{method.upper()} {path}" not in guide
    ]
    assert not missing, f"document these client routes in frontend-api-spec/*.md: {missing}"
    routes = pages["client-routes.md"]
    assert routes.count("```json") >= 12
    assert "/admin/v1/dev/clock" in routes and "ENGAGE_DEV_CLOCK" in routes
    assert "client-routes.md" in pages["README.md"]
