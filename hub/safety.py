"""Checks for everything that comes from outside (registries, manifests, cards, records, image files): paths
that must stay inside the folder CellHub owns, size caps on what is read, and YAML without aliases.

One place for these rules, so every reader applies the same ones.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import yaml
from pydantic import AfterValidator

from hub.config import max_pixels
from hub.errors import InvalidInput

#: Caps on metadata files read from outside (bytes). dsb2018-fluo's manifest lists 3,164 files in 0.7 MB, so
#: 16 MiB holds about 75,000 (a parsed JSON document can take ~30x its size in memory).
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_CARD_BYTES = 4 * 2**20
MAX_RECORD_BYTES = 16 * 2**20
MAX_PATH_CHARS = 1024

_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # + direction marks


def check_relpath(rel: object, what: str = "path", source: str | Path | None = None) -> str:
    """``rel`` if it is a safe relative POSIX path, else a one-line :class:`InvalidInput` naming ``source``.

    Refused: non-strings, empty, absolute (``/x``), drive letters (``C:``), UNC and backslashes, ``.`` or ``..``
    components, empty components (``a//b``), NUL and other control characters, and paths over 1,024 characters.
    """
    if not isinstance(rel, str) or not rel:
        raise InvalidInput(f"{what} {rel!r} is not a non-empty string", source)
    problem = (
        "is too long"
        if len(rel) > MAX_PATH_CHARS
        else "contains a control character"
        if _CONTROL.search(rel)
        else "contains a backslash"
        if "\\" in rel
        else "is absolute"
        if rel.startswith("/")
        else "starts with a drive letter"
        if _DRIVE.match(rel)
        else "has an empty, '.' or '..' component"
        if any(p in ("", ".", "..") for p in rel.split("/"))
        else None
    )
    if problem:
        raise InvalidInput(f"unsafe {what} {rel[:200]!r}: it {problem}", source)
    return rel


def relpath_validator(what: str) -> AfterValidator:
    """A pydantic validator of a string field, ``Annotated[str, relpath_validator("weights file")]``: a relative path
    that :func:`check_relpath` accepts (``what`` names it in the error)."""

    def check(v: str) -> str:
        try:
            return check_relpath(v, what)
        except InvalidInput as err:
            raise ValueError(err.problem) from None

    return AfterValidator(check)


def printable(text: object, limit: int = 200) -> str:
    """``text`` as at most ``limit`` characters of one line with no control characters or text-direction marks,
    safe to print to a terminal or a page (text from a registry is untrusted)."""
    return _UNPRINTABLE.sub("?", str(text))[:limit]


def inside(root: str | Path, rel: object, what: str = "path", source: str | Path | None = None) -> Path:
    """``root / rel`` for a safe relative path whose resolved location (symbolic links followed) lies inside
    ``root``; anything else is refused before any file is touched."""
    root = Path(root)
    path = root / check_relpath(rel, what, source)
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        raise InvalidInput(f"unsafe {what} {rel!r}: it resolves outside {root}", source)
    return path


def read_capped(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a local file, refused (one line) when it is larger than ``limit``."""
    path = Path(path)
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"{what} is larger than the {limit:,} bytes allowed", path)
    return data


def check_pixels(
    shape: tuple[int, ...], source: str | Path | None = None, dtype: object = None, what: str = "image"
) -> tuple[int, ...]:
    """``shape`` if an array of that shape fits the pixel budget (:func:`hub.config.max_pixels`, every channel and
    plane counts), else a one-line :class:`InvalidInput` naming ``source`` and the declared shape. Call it with
    the shape a file declares, before decoding it: a few kilobytes of compressed zeros can declare gigabytes."""
    shape = tuple(int(n) for n in shape)
    n, limit = math.prod(shape), max_pixels()
    if n > limit:
        kind = f" {dtype}" if dtype is not None else ""
        raise InvalidInput(
            f"{what} declares shape {shape}{kind} = {n:,} pixels, over the {limit:,} allowed "
            f"(CELLHUB_MAX_PIXELS); refused before decoding",
            source,
        )
    return shape


def check_safetensors(path: str | Path) -> Path:
    """``path`` if it parses as safetensors (safetensors' own header parser: 8-byte length, JSON header of at most
    100 MB, tensor offsets that cover the file exactly), else a one-line :class:`InvalidInput`. Reads the header
    only; nothing is unpickled."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            fh.keys()
    except FileNotFoundError:
        raise InvalidInput("weights file not found", path) from None
    except Exception as err:  # SafetensorError, and whatever the parser raises on hostile bytes
        problem = " ".join(str(err).split())[:200]
        raise InvalidInput(f"not a safetensors file ({problem})", path) from None
    return Path(path)


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without aliases: an alias bomb (billion laughs) is refused instead of expanded."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def load_yaml(text: str | bytes):
    """Parse YAML text safely (no Python objects, no aliases). Raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def load_yaml_text(text: str, what: str = "YAML", source: str | Path | None = None):
    """:func:`load_yaml`, with a one-line :class:`InvalidInput` (naming ``source``) instead of ``yaml.YAMLError``."""
    try:
        return load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise InvalidInput(f"{what} is not valid YAML{where}: {problem}", source) from None


def load_yaml_file(path: str | Path, limit: int = MAX_CARD_BYTES, what: str = "YAML file"):
    """A YAML file of at most ``limit`` bytes, parsed by :func:`load_yaml`; a one-line error names the file."""
    data = read_capped(path, limit, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} is not UTF-8 text", path) from None
    return load_yaml_text(text, what, path)
