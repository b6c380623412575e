"""Settings from the environment, and the services' URLs the composition root declares."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from services.bootstrap import SERVICES, settings_from_env
from shared.settings import DEV_JWT_KEY, ProcessRole, Settings


def test_settings_from_env_parse_types_and_ignore_empty_values() -> None:
    settings = Settings.from_env(
        {
            "MPKS_DATABASE_URL": "postgresql://mpks@db:5432/mpks",
            "MPKS_EVENTSTORE_POOL_SIZE": "7",
            "MPKS_READMODEL_POOL_SIZE": "12",
            "MPKS_DATA_DIR": "/var/lib/mpks",
            "MPKS_NATS_URL": "",
            "MPKS_JWT_ISSUER": "",
            "UNRELATED": "ignored",
        }
    )
    assert settings.database_url == "postgresql://mpks@db:5432/mpks"
    assert settings.eventstore_pool_size == 7
    assert settings.readmodel_pool_size == 12
    assert settings.data_dir == Path("/var/lib/mpks")
    assert isinstance(settings.data_dir, Path)
    assert settings.nats_url is None
    assert settings.jwt_issuer is None
    assert settings.jwt_secret == DEV_JWT_KEY


def test_settings_from_env_rejects_a_malformed_number() -> None:
    with pytest.raises(msgspec.ValidationError, match="int"):
        Settings.from_env({"MPKS_EVENTSTORE_POOL_SIZE": "many"})


def test_each_declared_service_url_is_read_by_name_with_its_default_port() -> None:
    settings = Settings.from_env(
        {"MPKS_TOYSVC_URL": "http://toy.internal:9000", "MPKS_OTHER_URL": ""},
        service_ports={"toysvc": 8199, "other": 8198},
    )
    assert settings.service_url("toysvc") == "http://toy.internal:9000"
    assert settings.service_url("other") == "http://127.0.0.1:8198"


def test_an_undeclared_service_has_no_url() -> None:
    settings = Settings.from_env({"MPKS_STRAY_URL": "http://stray:1"}, service_ports={})
    with pytest.raises(LookupError, match="MPKS_STRAY_URL"):
        settings.service_url("stray")


@pytest.mark.parametrize("name", ["database", "app_database", "nats", "jwks", "not-a-name"])
def test_a_service_cannot_take_a_name_whose_url_variable_means_something_else(name: str) -> None:
    with pytest.raises(ValueError, match="cannot name a service"):
        Settings.from_env({}, service_ports={name: 8100})


def test_the_composition_root_declares_every_service_with_its_own_port() -> None:
    settings = settings_from_env({"MPKS_CASES_URL": "http://cases.internal:80"})
    assert set(settings.service_urls) == set(SERVICES)
    assert settings.service_url("cases") == "http://cases.internal:80"
    ports = [declared.port for declared in SERVICES.values()]
    assert len(set(ports)) == len(ports)


def test_the_process_role_is_read_from_the_environment_and_defaults_to_all() -> None:
    assert Settings.from_env({}).role is ProcessRole.ALL
    assert Settings.from_env({"MPKS_ROLE": "worker"}).role is ProcessRole.WORKER
    with pytest.raises(msgspec.ValidationError, match="role"):
        Settings.from_env({"MPKS_ROLE": "everything"})


def test_each_role_runs_its_half() -> None:
    assert (ProcessRole.API.serves_api, ProcessRole.API.runs_background) == (True, False)
    assert (ProcessRole.WORKER.serves_api, ProcessRole.WORKER.runs_background) == (False, True)
    assert (ProcessRole.ALL.serves_api, ProcessRole.ALL.runs_background) == (True, True)
