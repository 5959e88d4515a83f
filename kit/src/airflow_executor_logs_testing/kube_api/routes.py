"""The fake Kubernetes API's routes: which paths it answers, with which method, under which RBAC permission."""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["METHODS", "PERMISSIONS", "ROUTE_PATTERNS", "VERSION", "resolve"]

ROUTE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("list", re.compile(r"/api/v1/pods")),
    ("list", re.compile(r"/api/v1/namespaces/(?P<namespace>[^/]+)/pods")),
    ("get", re.compile(r"/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<name>[^/]+)")),
    ("log", re.compile(r"/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<name>[^/]+)/log")),
    ("version", re.compile(r"/version/?")),
    ("review", re.compile(r"/apis/authorization\.k8s\.io/v1/selfsubjectaccessreviews")),
)
#: The method each route answers; the others get 405.
METHODS = {"review": "POST"}
#: ``(verb, resource)`` that RBAC checks for each pod route.
PERMISSIONS = {"list": ("list", "pods"), "get": ("get", "pods"), "log": ("get", "pods/log")}
VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-fake",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def resolve(path: str) -> tuple[str, dict[str, str]]:
    """The route ``path`` takes (``"other"`` for none) and the namespace and name it carries."""
    for route, pattern in ROUTE_PATTERNS:
        match = pattern.fullmatch(path)
        if match is not None:
            return route, {k: unquote(v) for k, v in match.groupdict().items()}
    return "other", {}
