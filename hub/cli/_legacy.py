"""The spellings of the command line before ``cellhub NOUN VERB``, kept working for one version: each runs its new
command after one line on stderr (``cellhub list datasets is deprecated; use cellhub datasets list``). They are
rewrites of the arguments, not commands, so ``--help`` never shows them.

Old spelling                          New spelling
``cellhub list``                      ``cellhub registry list``
``cellhub list datasets|models``      ``cellhub datasets|models list``
``cellhub search TEXT``               ``cellhub registry list --search TEXT``
``cellhub info REF [--kind K]``       ``cellhub datasets|models info REF``
``cellhub lock REF...``               ``cellhub registry lock REF...``
``cellhub reindex``                   ``cellhub registry reindex``
``cellhub benchmarks``                ``cellhub benchmarks list``
``cellhub leaderboard BENCHMARK``     ``cellhub benchmarks leaderboard BENCHMARK``
``cellhub eval ...``                  ``cellhub benchmarks eval ...``
``cellhub schema KIND``               ``cellhub schema show KIND``
"""

from __future__ import annotations

import typer

from hub.registry.ref import KINDS

MOVED = {  # old top-level verb -> (noun, verb): the arguments stay as they are
    "reindex": ("registry", "reindex"),
    "lock": ("registry", "lock"),
    "leaderboard": ("benchmarks", "leaderboard"),
    "eval": ("benchmarks", "eval"),
}
HELP = ("--help",)


def _positional(args: list[str], valued: tuple[str, ...] = ("--registry",)) -> int | None:
    """Index of the first argument that is no option nor the value of one of the ``valued`` options."""
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return i + 1 if i + 1 < len(args) else None
        if not a.startswith("-"):
            return i
        i += 2 if a in valued else 1
    return None


def _take_kind(args: list[str]) -> tuple[str | None, list[str]]:
    """The value of ``--kind K`` / ``--kind=K`` in ``args`` (``None`` if absent) and ``args`` without it."""
    rest, kind, i = [], None, 0
    while i < len(args):
        a = args[i]
        if a == "--kind":
            if i + 1 >= len(args):
                raise typer.BadParameter("--kind needs a value: datasets or models")
            kind, i = args[i + 1], i + 2
            continue
        if a.startswith("--kind="):
            kind = a.partition("=")[2]
        else:
            rest.append(a)
        i += 1
    return kind, rest


def rewrite(args: list[str]) -> tuple[list[str], str, str] | None:
    """``(new arguments, old spelling, new spelling)`` when ``args`` use an old spelling, else ``None``."""
    i = _positional(args, ())
    if i is None:
        return None
    head, cmd, rest = args[:i], args[i], args[i + 1 :]
    if cmd in MOVED:
        noun, verb = MOVED[cmd]
        return [*head, noun, verb, *rest], f"cellhub {cmd}", f"cellhub {noun} {verb}"
    if cmd == "list":
        j = _positional(rest)
        if j is not None and rest[j] in KINDS:
            kind = rest[j]
            return [*head, kind, "list", *rest[:j], *rest[j + 1 :]], f"cellhub list {kind}", f"cellhub {kind} list"
        return [*head, "registry", "list", *rest], "cellhub list", "cellhub registry list"
    if cmd == "search":
        j = _positional(rest)
        new = [*rest, "--search"] if j is None else [*rest[:j], "--search", *rest[j:]]
        return [*head, "registry", "list", *new], "cellhub search", "cellhub registry list --search"
    if cmd == "info":
        kind, rest = _take_kind(rest)
        if kind is not None and kind not in KINDS:
            raise typer.BadParameter(f"--kind must be one of {', '.join(KINDS)}")
        old = "cellhub info" + (f" --kind {kind}" if kind else "")
        kind = kind or "datasets"
        return [*head, kind, "info", *rest], old, f"cellhub {kind} info"
    if cmd == "benchmarks" and all(a.startswith("-") and a not in HELP for a in rest):
        return [*head, "benchmarks", "list", *rest], "cellhub benchmarks", "cellhub benchmarks list"
    if cmd == "schema" and rest and not rest[0].startswith("-") and rest[0] not in ("show", "list"):
        return [*head, "schema", "show", *rest], "cellhub schema KIND", "cellhub schema show KIND"
    return None
