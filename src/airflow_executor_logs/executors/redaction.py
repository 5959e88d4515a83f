"""
One redaction step for text that reaches every viewer of a log: problems reported by a read.

An exception from a failed build or client may name an AWS account and the role it ran as, or carry a
URL with a signed query or credentials. What a person needs to act stays: the kind of error, the
resource (its account number removed), the action and the HTTP status.
"""

from __future__ import annotations

import re

__all__ = ["redact", "without_secrets"]

#: The principal an AWS call ran as (a role, user or assumed-role session): who, not what failed.
_PRINCIPAL_ARN = re.compile(r"\barn:aws[\w-]*:(?:iam|sts)::\d{12}:[^\s,;'\"()]+")
_ACCOUNT = re.compile(r"(?<![\w.-])\d{12}(?![\w.-])")
_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b")
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^\s/@:]+:[^\s/@]+@", re.IGNORECASE)
_URL_QUERY = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?#'\"]+)\?[^\s#'\"]+", re.IGNORECASE)
_BEARER = re.compile(r"\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_SECRET_PARAMETER = re.compile(
    r"\b((?:access_?token|token|signature|x-amz-signature|x-amz-security-token|password|secret|api_?key)[=:]\s*)"
    r"[^\s&'\",;]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` without AWS account ids, principal ARNs, access keys, URL queries and credentials, or tokens."""
    text = _PRINCIPAL_ARN.sub("<principal redacted>", text)
    text = _ACCESS_KEY.sub("<access key redacted>", text)
    text = _URL_CREDENTIALS.sub(r"\1<credentials redacted>@", text)
    text = _URL_QUERY.sub(r"\1?<query redacted>", text)
    text = _BEARER.sub(r"\1<redacted>", text)
    text = _SECRET_PARAMETER.sub(r"\1<redacted>", text)
    return _ACCOUNT.sub("<account>", text)


def without_secrets(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` (a client's own token, password or key path) replaced, longest first."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text
