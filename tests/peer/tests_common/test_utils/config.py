"""``conf_vars``: Airflow options set for a block (or a decorated test), then put back."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def conf_vars(overrides: dict[tuple[str, str], str | None]) -> Iterator[None]:
    """Set (``None``: remove) each ``(section, key)`` in Airflow's conf and in its environment variable."""
    from airflow.configuration import conf

    saved_conf: dict[tuple[str, str], str | None] = {}
    saved_env: dict[str, str | None] = {}
    for (section, key), value in overrides.items():
        saved_conf[(section, key)] = conf.get(section, key) if conf.has_option(section, key) else None
        env = f"AIRFLOW__{section.upper()}__{key.upper()}"
        saved_env[env] = os.environ.pop(env, None)
        if value is None:
            if conf.has_option(section, key):
                conf.remove_option(section, key)
        else:
            conf.set(section, key, value)
    try:
        yield
    finally:
        for (section, key), value in saved_conf.items():
            if value is None:
                if conf.has_option(section, key):
                    conf.remove_option(section, key)
            else:
                conf.set(section, key, value)
        for env, env_value in saved_env.items():
            if env_value is not None:
                os.environ[env] = env_value
