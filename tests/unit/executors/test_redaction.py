"""Problem text shown to viewers: credentials and identities out, what a person needs to act kept."""

from __future__ import annotations

from airflow_executor_logs.executors.redaction import redact

ACCESS_DENIED = (
    "ClientError: An error occurred (AccessDenied) when calling the DescribeCluster operation: User: "
    "arn:aws:sts::123456789012:assumed-role/airflow-api/i-0abc123 is not authorized to perform: "
    "eks:DescribeCluster on resource: arn:aws:eks:eu-west-1:123456789012:cluster/prod (HTTP 403)"
)


def test_an_aws_access_denied_keeps_the_error_the_action_the_resource_and_the_status() -> None:
    text = redact(ACCESS_DENIED)
    assert "123456789012" not in text
    assert "assumed-role/airflow-api" not in text
    assert "(AccessDenied)" in text
    assert "eks:DescribeCluster" in text
    assert "arn:aws:eks:eu-west-1:<account>:cluster/prod" in text
    assert "HTTP 403" in text


def test_a_url_keeps_its_path_without_its_query_or_credentials() -> None:
    text = redact(
        "HTTPError: 401 Client Error: Unauthorized for url: "
        "https://nomad.example.com:4646/v1/allocation/abc/logs?token=s3cr3t-t0ken&follow=true"
    )
    assert "s3cr3t-t0ken" not in text
    assert "https://nomad.example.com:4646/v1/allocation/abc/logs?<query redacted>" in text
    assert "401 Client Error: Unauthorized" in text
    assert "alice:hunter22" not in redact("connect to https://alice:hunter22@db.example.com/x failed")


def test_keys_and_tokens_outside_urls() -> None:
    text = redact("key AKIAABCDEFGHIJKLMNOP, Authorization: Bearer eyJhbGciOi.x.y, token=abcdef, password: pw1")
    for secret in ("AKIAABCDEFGHIJKLMNOP", "eyJhbGciOi.x.y", "abcdef", "pw1"):
        assert secret not in text


def test_ordinary_text_is_untouched() -> None:
    line = "NomadExecutor failed to read logs: KeyError: 'allocation' (after 1.25 s, try 2, 2026-01-01T00:00:00)"
    assert redact(line) == line
