"""YAML round trip for pydantic cards, with errors that name the file and the field path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from hub.errors import CardError, InvalidInput
from hub.safety import MAX_CARD_BYTES, load_yaml_file

M = TypeVar("M", bound=BaseModel)


def format_validation_error(err: ValidationError) -> str:
    """One line per problem: ``field.path: message`` (a rule across fields: its message, which names them), joined
    by '; '."""
    parts = []
    for e in err.errors():
        loc, msg = ".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_card(model: type[M], data: object, source: str | Path = "<card>") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise CardError(format_validation_error(err), source) from None


def load_card(model: type[M], path: str | Path) -> M:
    """A card file (at most 4 MiB of YAML without aliases, see :mod:`hub.safety`), validated by ``model``."""
    path = Path(path)
    try:
        data = load_yaml_file(path, MAX_CARD_BYTES, "card")
    except FileNotFoundError:
        raise CardError("card file not found", path) from None
    except InvalidInput as err:
        raise CardError(err.problem, path) from None
    return parse_card(model, data, path)


def dump_card(card: BaseModel) -> str:
    data = card.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def save_card(card: BaseModel, path: str | Path) -> None:
    """Write the card as YAML, atomically (a reader sees the old card or the new one, never half of one)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dump_card(card))
    os.replace(tmp, path)
