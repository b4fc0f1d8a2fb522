"""``name@version`` references."""

from __future__ import annotations

from typing import NamedTuple

from hub.cards.dataset import NAME, SEMVER
from hub.errors import InvalidInput

KINDS = ("datasets", "models")


class Ref(NamedTuple):
    name: str
    version: str  # an exact X.Y.Z, or "latest"

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def parse_ref(text: str) -> Ref:
    name, _, version = text.partition("@")
    version = version or "latest"
    if not NAME.fullmatch(name):
        raise InvalidInput(f"{text!r}: a name is lower-case letters, digits and dashes")
    if version != "latest" and not SEMVER.fullmatch(version):
        raise InvalidInput(f"{text!r}: a version is X.Y.Z or 'latest'")
    return Ref(name, version)


def version_key(v: str) -> tuple[int | bool | str, ...]:
    core, _, pre = v.partition("-")
    return (*map(int, core.split(".")), pre == "", pre)
