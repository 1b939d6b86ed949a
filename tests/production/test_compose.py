"""compose.yaml is a valid Compose file with the topology the README describes: PostgreSQL,
Redis and Mailpit, a one-shot migration every hub process waits for, scalable API processes
behind a proxy, workers and a mail receiver, each with a health check, all configured with
settings the hub has. No Docker engine runs here: `docker-compose config` (Debian's
package, which scripts/test.sh installs) validates the file, and the rest reads it."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.config import InsecureSettings, Settings
from hub.health.probe import PROBES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# The hub's services and the `hub` command each runs.
HUB_COMMANDS = {
    "migrate": "migrate",
    "api": "serve",
    "worker": "worker",
    "mail-receiver": "mail-receiver",
}
LONG_RUNNING = ["api", "worker", "mail-receiver"]
SERVICES = {"postgres", "redis", "mailpit", "proxy", *HUB_COMMANDS}
SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
VARIABLE = re.compile(r"\bHUB_[A-Z][A-Z0-9_]*\b")


def read_env_file(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution, and $$ for $."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        value = env.get(name, "")
        if operator == ":?" and not value:
            raise ValueError(argument)
        if operator == ":-" and not value:
            return str(argument)
        return value

    return SUBSTITUTION.sub(substitute, text)


def load_stack(env: dict[str, str]) -> dict[str, Any]:
    """compose.yaml as Compose reads it with this .env: substituted, anchors merged, each
    service's env_file beneath its environment."""
    stack: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(), env))
    for service in stack["services"].values():
        if service.get("env_file") == ".env":
            service["environment"] = {**env, **service.get("environment", {})}
    return stack


def random_secrets() -> dict[str, str]:
    return {
        "POSTGRES_PASSWORD": secrets.token_hex(24),
        "HUB_SECRET_KEY": secrets.token_urlsafe(48),
        "HUB_INBOUND_MAIL_SECRET": secrets.token_urlsafe(48),
    }


@pytest.fixture
def example_env() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE.read_text())


@pytest.fixture
def stack(example_env: dict[str, str]) -> dict[str, Any]:
    return load_stack({**example_env, **random_secrets()})


# --- validated by docker-compose ---------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError("CI=true but docker-compose is not installed (scripts/test.sh)")
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    return found


def compose_folder(tmp_path: Path, env_text: str) -> Path:
    """A copy of the deployment files, as an operator has them after `cp .env.example .env`."""
    for path in (COMPOSE, DOCKERFILE, DOCKERIGNORE):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / ".env").write_text(env_text)
    return tmp_path


def compose_config(binary: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "COMPOSE_"))}
    return subprocess.run(
        [
            binary,
            "--project-directory",
            str(folder),
            "-f",
            str(folder / "compose.yaml"),
            "config",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=folder,
        env=environment,
        timeout=60,
    )


def test_docker_compose_validates_the_file_as_the_example_env_fills_it(
    docker_compose: str, tmp_path: Path, example_env: dict[str, str]
) -> None:
    folder = compose_folder(tmp_path, ENV_EXAMPLE.read_text())
    checked = compose_config(docker_compose, folder)
    assert checked.returncode == 0, checked.stderr
    resolved = yaml.safe_load(checked.stdout)
    assert set(resolved["services"]) == SERVICES
    # What this test module reads out of compose.yaml is what Compose itself makes of it.
    ours = load_stack(example_env)
    for name, service in resolved["services"].items():
        theirs = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        assert theirs == {
            k: str(v) for k, v in ours["services"][name].get("environment", {}).items()
        }
        assert service.get("depends_on", {}) == ours["services"][name].get("depends_on", {})


def test_docker_compose_refuses_to_start_the_stack_without_its_secrets(
    docker_compose: str, tmp_path: Path
) -> None:
    folder = compose_folder(tmp_path, "HUB_BASE_URL=https://hub.example.nl\n")
    refused = compose_config(docker_compose, folder)
    assert refused.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in refused.stderr


# --- the topology ------------------------------------------------------------------------------


def test_the_stack_has_its_services_and_each_long_running_one_a_health_check(
    stack: dict[str, Any],
) -> None:
    services = stack["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if name == "migrate":
            assert check == {"disable": True} and service["restart"] == "no"
        else:
            assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
            assert not check.get("disable"), name


def test_each_hub_process_is_checked_by_what_it_does(stack: dict[str, Any]) -> None:
    services = stack["services"]
    for name in LONG_RUNNING:
        command = HUB_COMMANDS[name]
        assert services[name]["command"] == [command]
        assert command in PROBES
        assert services[name]["healthcheck"]["test"] == [
            "CMD",
            "python",
            "-m",
            "hub.health",
            command,
        ]
    assert services["migrate"]["command"] == ["migrate"]


def test_every_hub_process_waits_for_the_migration_and_the_migration_for_postgres(
    stack: dict[str, Any],
) -> None:
    services = stack["services"]
    for name in LONG_RUNNING:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["proxy"]["depends_on"] == {"api": {"condition": "service_healthy"}}


def test_the_api_leaves_delivery_to_the_workers(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert services["api"]["environment"]["HUB_RUN_WORKER"] == "false"
    for name in ("worker", "mail-receiver", "migrate"):
        assert "HUB_RUN_WORKER" not in services[name]["environment"], name


def test_api_and_workers_can_be_scaled(stack: dict[str, Any]) -> None:
    # Several containers of a service cannot share a container name or a host port.
    for name in ("api", "worker"):
        service = stack["services"][name]
        assert "container_name" not in service and "ports" not in service, name
    proxy = stack["services"]["proxy"]
    caddyfile = "\n".join(proxy["command"])
    assert re.search(r"dynamic a \{\s*name api\s*port 8000\b", caddyfile)
    assert dockerfile_env()["HUB_PORT"] == "8000"
    assert proxy["ports"] == ["8080:8080"]


def test_the_proxy_writes_the_caddyfile_it_then_runs(stack: dict[str, Any], tmp_path: Path) -> None:
    proxy = stack["services"]["proxy"]
    assert proxy["entrypoint"] == ["/bin/sh", "-c"]
    script = proxy["command"][0].replace("/etc/caddy/", f"{tmp_path}/")
    # Stand in for caddy: print the arguments it would get.
    script = script.replace("exec caddy run", "exec echo caddy run")
    ran = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True)
    assert ran.stdout.split() == [
        "caddy",
        "run",
        "--config",
        f"{tmp_path}/Caddyfile",
        "--adapter",
        "caddyfile",
    ]
    caddyfile = (tmp_path / "Caddyfile").read_text()
    assert caddyfile.startswith(":8080 {\n\treverse_proxy {\n")
    assert caddyfile.count("{") == caddyfile.count("}")


def test_hub_processes_share_the_database_redis_mail_and_document_store(
    stack: dict[str, Any],
) -> None:
    services = stack["services"]
    environments = [services[name]["environment"] for name in HUB_COMMANDS]
    for setting in ("HUB_DATABASE_URL", "HUB_REDIS_URL", "HUB_SECRET_KEY", "HUB_DOCUMENTS_DIR"):
        assert len({environment[setting] for environment in environments}) == 1, setting
    first = environments[0]
    assert first["HUB_DATABASE_URL"].startswith("postgresql+asyncpg://hub:")
    assert first["HUB_DATABASE_URL"].endswith("@postgres:5432/hub")
    assert first["HUB_REDIS_URL"] == "redis://redis:6379/0"
    assert first["HUB_SMTP_HOST"] == "mailpit" and str(first["HUB_SMTP_PORT"]) == "1025"
    for name in LONG_RUNNING:
        assert f"documents:{first['HUB_DOCUMENTS_DIR']}" in services[name]["volumes"], name
    assert set(stack["volumes"]) == {"postgres", "documents"}


def test_every_hub_setting_the_stack_names_exists(stack: dict[str, Any]) -> None:
    known = {f"HUB_{name.upper()}" for name in Settings.model_fields}
    named = set(VARIABLE.findall(COMPOSE.read_text())) | set(
        VARIABLE.findall(ENV_EXAMPLE.read_text())
    )
    for name in HUB_COMMANDS:
        named |= {k for k in stack["services"][name]["environment"] if k.startswith("HUB_")}
    assert named - known == set(), f"not settings of hub/config.py: {sorted(named - known)}"


def settings_of(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a container of this service starts with."""
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    for name, value in {**dockerfile_env(), **service["environment"]}.items():
        monkeypatch.setenv(name, str(value))
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_hub_refuses_to_run_on_the_example_secrets(
    example_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = load_stack(example_env)
    for name in HUB_COMMANDS:
        with pytest.raises(InsecureSettings) as refused:
            settings_of(stack["services"][name], monkeypatch)
        assert "HUB_SECRET_KEY is a placeholder" in str(refused.value)
        assert "HUB_INBOUND_MAIL_SECRET is a placeholder" in str(refused.value)
        assert "the password in HUB_DATABASE_URL is a placeholder" in str(refused.value)


def test_with_real_secrets_every_hub_process_gets_valid_settings(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in HUB_COMMANDS:
        settings = settings_of(stack["services"][name], monkeypatch)
        assert settings.environment == "production"
        assert settings.run_worker is (name != "api")
        assert settings.host == "0.0.0.0" and settings.port == 8000  # noqa: S104
        assert settings.mail_receiver_host == "0.0.0.0"  # noqa: S104
        assert settings.smtp_security == "none"
        assert str(settings.document_store) == "/var/lib/hub/documents"


# --- the image ---------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def dockerfile_env() -> dict[str, str]:
    values = {}
    for instruction, arguments in dockerfile_instructions():
        if instruction == "ENV":
            values.update(dict(re.findall(r"(\w+)=(\S+)", arguments)))
    return values


def test_the_image_runs_the_hub_as_a_user_with_a_health_check() -> None:
    instructions = dockerfile_instructions()
    kinds = [instruction for instruction, _ in instructions]
    assert instructions[0][0] == "FROM" and "python:3.11-slim" in instructions[0][1]
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert kinds.index("USER") < kinds.index("ENTRYPOINT")
    assert ("ENTRYPOINT", '["hub"]') in instructions and ("CMD", '["serve"]') in instructions
    healthcheck = next(
        arguments for instruction, arguments in instructions if instruction == "HEALTHCHECK"
    )
    assert healthcheck.endswith('CMD ["python", "-m", "hub.health", "serve"]')
    assert dockerfile_env()["HUB_ENVIRONMENT"] == "production"


def test_the_image_is_built_only_from_the_project_files() -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert patterns[0] == "*", "the build context starts empty and lets in what it needs"
    allowed = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    assert not allowed & {".env", ".venv", "var", ".git"}
    for instruction, arguments in dockerfile_instructions():
        if instruction == "COPY" and not arguments.startswith("--from"):
            for source in arguments.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is not in .dockerignore's list"


def test_the_dependency_list_the_image_installs_is_the_projects() -> None:
    snippet = re.search(r'python -c "([^"]+)" > /tmp/requirements.txt', DOCKERFILE.read_text())
    assert snippet is not None
    listed = subprocess.run(
        [sys.executable, "-c", snippet.group(1)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.split()
    assert any(line.startswith("fastapi") for line in listed)
    assert any(line.startswith("asyncpg") for line in listed)
