"""Text files from outside (CSV tables, JSON records, XML annotations) read so that bad bytes or bad syntax become
one line naming the file and the line, never a traceback."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from hub.errors import InvalidInput
from hub.safety import read_capped


def _text(data: bytes, path: Path, what: str) -> str:
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (spreadsheet exports) is dropped
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InvalidInput(f"{what} is not UTF-8 text (line {line}: byte 0x{data[err.start]:02x})", path) from None


def read_csv(path: str | Path, what: str = "CSV file") -> list[dict]:
    """The rows of a UTF-8 CSV file with a header line, as dicts.

    Text that is not UTF-8 or not CSV, and a row with more or fewer fields than the header, are a one-line
    :class:`InvalidInput` naming the file and the line; a missing file raises FileNotFoundError.
    """
    return [row for _, row in read_csv_lines(path, what)]


def read_csv_lines(path: str | Path, what: str = "CSV file") -> list[tuple[int, dict]]:
    """:func:`read_csv` with the line number of each row (of its last line, for a quoted field that spans
    lines), so that a reader checking values can name the line."""
    path = Path(path)
    reader = csv.DictReader(io.StringIO(_text(path.read_bytes(), path, what), newline=""))
    rows = []
    try:
        for row in reader:
            if None in row or None in row.values():
                raise InvalidInput(
                    f"{what}: line {reader.line_num} does not have the {len(reader.fieldnames or ())} fields of the "
                    "header",
                    path,
                )
            rows.append((reader.line_num, row))
    except csv.Error as err:
        raise InvalidInput(f"{what} is not valid CSV (line {reader.line_num}: {err})", path) from None
    return rows


def parse_json(data: bytes | str, source: str | Path, what: str = "JSON file"):
    """``data`` parsed as JSON; bad bytes, bad syntax or nesting too deep for the parser are a one-line
    :class:`InvalidInput` naming ``source``."""
    try:
        return json.loads(data)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1  # type: ignore[arg-type]  # only bytes fail to decode
        problem = f"not UTF-8 text, line {line}: byte 0x{data[err.start]:02x}"
    except json.JSONDecodeError as err:
        problem = f"line {err.lineno}, column {err.colno}: {err.msg}"
    except RecursionError:
        problem = "nested too deeply"
    raise InvalidInput(f"{what} is not valid JSON ({problem})", source)


def is_number(v: object) -> bool:
    """Whether a parsed JSON (or YAML) value is a finite number: an int or a float, not a bool, NaN or infinity."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def read_json(path: str | Path, what: str = "JSON file"):
    """A local JSON file, parsed; see :func:`parse_json` (a missing file raises FileNotFoundError)."""
    path = Path(path)
    return parse_json(path.read_bytes(), path, what)


MAX_XML_BYTES = 64 * 2**20  # an annotation file (VOC, ImageScope) is kilobytes to a few megabytes


class _RootReached(Exception):
    """The prolog check is done: the root element started and no DOCTYPE came before it."""


def _refuse_dtd(data: bytes, path: Path, what: str) -> None:
    """Refuse a document with a DOCTYPE (the only place entities can be declared); parses the prolog only."""
    from xml.parsers import expat

    def doctype(*_):
        raise InvalidInput(f"{what} declares a DOCTYPE (DTDs and entities are refused)", path)

    def root(*_):
        raise _RootReached

    p = expat.ParserCreate()
    p.StartDoctypeDeclHandler = doctype
    p.StartElementHandler = root
    try:
        p.Parse(data, True)
    except _RootReached:
        return
    except expat.ExpatError as err:
        raise InvalidInput(f"{what} is not well-formed XML ({err})", path) from None
    raise InvalidInput(f"{what} has no root element", path)


def read_xml(path: str | Path, what: str = "XML file", max_bytes: int = MAX_XML_BYTES):
    """The root element of a local XML file, parsed by the standard library.

    A file over ``max_bytes``, a document type declaration (the door to entity expansion: no annotation format
    needs one; checked on the prolog before the document is parsed) and bad syntax are a one-line
    :class:`InvalidInput` naming the file; a missing file raises FileNotFoundError.
    """
    from xml.etree import ElementTree

    path = Path(path)
    data = read_capped(path, max_bytes, what)
    _refuse_dtd(data, path, what)
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as err:
        raise InvalidInput(f"{what} is not well-formed XML ({err})", path) from None
