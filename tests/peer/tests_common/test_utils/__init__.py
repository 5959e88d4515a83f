"""Helpers the provider's tests import from ``tests_common.test_utils``."""
