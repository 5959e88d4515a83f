"""``Settings.from_conf``: every field read from Airflow's ``conf``, a bad number means its default."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_executor_logs import config
from airflow_executor_logs.config import Settings
from tests.support.airflow_state import conf_vars

OURS = [field.name for field in dataclasses.fields(Settings) if field.name != "multi_team"]
OVERRIDES = {
    "read_timeout": ("2.5", 2.5),
    "connect_timeout": ("0.5", 0.5),
    "client_ttl": ("60", 60.0),
    "fallback_enabled": ("False", False),
    "fallback_timeout": ("12", 12.0),
    "max_concurrent_fallback_reads": ("3", 3),
    "breaker_threshold": ("7", 7),
    "breaker_cooldown": ("3.5", 3.5),
    "max_concurrent_reads": ("2", 2),
    "slot_wait": ("0.1", 0.1),
    "pod_cache_ttl": ("9", 9.0),
    "pod_cache_size": ("10", 10),
}


@pytest.fixture(autouse=True)
def _nothing_configured() -> Iterator[None]:
    """No ``[executor_logs]`` option nor ``[core] multi_team`` set in the environment."""
    with conf_vars({**{(config.SECTION, name): None for name in OURS}, ("core", "multi_team"): None}):
        yield


def _names(option_type: str) -> list[str]:
    """Our options of ``option_type`` (``float``, ``integer``, ``boolean``) as the provider declares them."""
    return [name for name, option in config.provider_config_options().items() if option["type"] == option_type]


def _declared_default(option: dict[str, Any]) -> object:
    """An option's default as the provider declares it (a string), as its type."""
    parse = {"float": float, "integer": int, "boolean": lambda value: {"True": True, "False": False}[value]}
    return parse[option["type"]](option["default"])


def test_nothing_configured_means_the_defaults() -> None:
    assert Settings.from_conf() == Settings()


def test_with_only_fallbacks_each_field_is_the_declared_default_read_from_its_section(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With nothing configured at all, the snapshot holds the provider's declared defaults."""
    from airflow.configuration import conf

    read: list[tuple[str, str, str]] = []

    def fallback_only(getter: str) -> Any:
        def get(section: str, key: str, fallback: Any = None, **kwargs: Any) -> Any:
            read.append((getter, section, key))
            return fallback

        return get

    for getter in ("getfloat", "getboolean", "getint"):
        monkeypatch.setattr(conf, getter, fallback_only(getter))
    settings = Settings.from_conf()
    declared = {name: _declared_default(option) for name, option in config.provider_config_options().items()}
    assert declared == {name: getattr(settings, name) for name in declared}
    assert sorted(declared) == sorted(OURS)
    assert sorted(read) == sorted(
        [
            *[
                ("getfloat", config.SECTION, name)
                for name, option in config.provider_config_options().items()
                if option["type"] == "float"
            ],
            *[
                ("getint", config.SECTION, name)
                for name, option in config.provider_config_options().items()
                if option["type"] == "integer"
            ],
            ("getboolean", config.SECTION, "fallback_enabled"),
            ("getboolean", "core", "multi_team"),  # marked with field metadata "section"
        ]
    )


def test_overrides() -> None:
    with conf_vars({(config.SECTION, name): text for name, (text, _) in OVERRIDES.items()}):
        settings = Settings.from_conf()
    assert settings == Settings(**{name: value for name, (_, value) in OVERRIDES.items()})  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["0", "-1", "0.0", "-0.5", "inf", "nan"])
def test_a_float_not_above_0_or_not_finite_means_its_default(text: str) -> None:
    names = _names("float")
    with conf_vars({(config.SECTION, name): text for name in names}):
        settings = Settings.from_conf()
    assert {name: getattr(settings, name) for name in names} == {name: getattr(Settings(), name) for name in names}


@pytest.mark.parametrize("text", ["0", "-3"])
def test_an_integer_not_above_0_means_its_default(text: str) -> None:
    names = _names("integer")
    with conf_vars({(config.SECTION, name): text for name in names}):
        settings = Settings.from_conf()
    assert {name: getattr(settings, name) for name in names} == {name: getattr(Settings(), name) for name in names}


@pytest.mark.parametrize(
    ("text", "expected"), [("False", False), ("false", False), ("0", False), ("True", True), ("t", True)]
)
def test_booleans(text: str, expected: bool) -> None:
    with conf_vars({(config.SECTION, "fallback_enabled"): text, ("core", "multi_team"): text}):
        settings = Settings.from_conf()
    assert (settings.fallback_enabled, settings.multi_team) == (expected, expected)


def test_multi_team_is_read_from_core_not_from_our_section() -> None:
    assert Settings.from_conf().multi_team is False
    with conf_vars({(config.SECTION, "multi_team"): "True"}):
        assert Settings.from_conf().multi_team is False
    with conf_vars({("core", "multi_team"): "True"}):
        assert Settings.from_conf().multi_team is True
