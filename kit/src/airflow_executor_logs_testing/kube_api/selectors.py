"""Kubernetes label selectors: the grammar of ``labelSelector`` and matching labels against it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["LabelSelectorError", "Operator", "Requirement", "Selector", "parse_label_selector"]

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_KEY_RE = re.compile(rf"(?:(?P<prefix>{_DNS_LABEL}(?:\.{_DNS_LABEL})*)/)?(?P<name>{_NAME})")
_VALUE_RE = re.compile(rf"(?:{_NAME})?")
_TOKEN_RE = re.compile(r"\s*(?:(?P<op>==|!=|=|!|\(|\)|,)|(?P<word>[A-Za-z0-9_./-]+))")

_Token = tuple[Literal["op", "word"], str]


class LabelSelectorError(ValueError):
    """A label selector string that cannot be parsed."""


@dataclass(frozen=True)
class Requirement:
    """One requirement of a label selector, e.g. ``app in (a,b)``."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement."""
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # "!=" and "notin"


@dataclass(frozen=True)
class Selector:
    """A parsed label selector: the AND of its requirements (empty matches everything)."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        actual = labels or {}
        return all(requirement.matches(actual) for requirement in self.requirements)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].isspace():
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            bad = text[pos:].lstrip()[0]
            raise LabelSelectorError(f"unable to parse requirement: unexpected character {bad!r} in {text!r}")
        op = match.group("op")
        tokens.append(("op", op) if op is not None else ("word", match.group("word")))
        pos = match.end()
    return tokens


class _SelectorParser:
    """Recursive-descent parser for the Kubernetes label selector grammar."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def fail(self, why: str) -> LabelSelectorError:
        return LabelSelectorError(f"unable to parse requirement: {why} in {self.text!r}")

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.fail("unexpected end of selector")
        self.pos += 1
        return token

    def parse(self) -> Selector:
        if not self.tokens:
            return Selector()
        requirements = [self.requirement()]
        while self.peek() is not None:
            if self.take() != ("op", ","):
                raise self.fail("expected ','")
            requirements.append(self.requirement())
        return Selector(tuple(requirements))

    def requirement(self) -> Requirement:
        if self.peek() == ("op", "!"):
            self.pos += 1
            return Requirement(self.key(), "!")
        key = self.key()
        following = self.peek()
        if following is None or following == ("op", ","):
            return Requirement(key, "exists")
        kind, text = self.take()
        if kind == "op" and text in ("=", "==", "!="):
            return Requirement(key, "!=" if text == "!=" else "=", frozenset({self.optional_value()}))
        if kind == "word" and text == "in":
            return Requirement(key, "in", self.value_set())
        if kind == "word" and text == "notin":
            return Requirement(key, "notin", self.value_set())
        raise self.fail(f"unexpected {text!r} after key {key!r}")

    def key(self) -> str:
        kind, text = self.take()
        match = _KEY_RE.fullmatch(text) if kind == "word" else None
        if match is None or len(match.group("name")) > 63 or len(match.group("prefix") or "") > 253:
            raise self.fail(f"invalid label key {text!r}")
        return text

    def value(self, text: str) -> str:
        if len(text) > 63 or _VALUE_RE.fullmatch(text) is None:
            raise self.fail(f"invalid label value {text!r}")
        return text

    def optional_value(self) -> str:
        token = self.peek()
        if token is None or token == ("op", ","):
            return ""
        kind, text = self.take()
        if kind != "word":
            raise self.fail(f"expected a value, found {text!r}")
        return self.value(text)

    def value_set(self) -> frozenset[str]:
        if self.take() != ("op", "("):
            raise self.fail("expected '('")
        values: set[str] = set()
        while True:
            kind, text = self.take()
            if kind != "word":
                raise self.fail(f"expected a value, found {text!r}")
            values.add(self.value(text))
            separator = self.take()
            if separator == ("op", ")"):
                return frozenset(values)
            if separator != ("op", ","):
                raise self.fail(f"expected ',' or ')', found {separator[1]!r}")


def parse_label_selector(text: str | None) -> Selector:
    """Parse a Kubernetes label selector (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``,
    ``k notin (a,b)``, comma-separated). Raises :class:`LabelSelectorError` when malformed."""
    return _SelectorParser(text or "").parse()
