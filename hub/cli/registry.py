"""``cellhub registry ...`` (list, reindex, lock) and ``cellhub cache verify``, plus what the ``datasets`` and
``models`` nouns share: publish, pull, list and show published versions."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hub.cli._options import LOCKFILE, JsonOption, KindOption, RegistryOption, SearchOption
from hub.registry import Registry, parse_ref, pull, read_lock, write_lock
from hub.registry.cache import pinned
from hub.registry.ref import KINDS
from hub.registry.registry import PublishCheck
from hub.safety import printable

console = Console(width=None if sys.stdout.isatty() else 160)

app = typer.Typer(
    help="A registry as a whole: list what it holds (both kinds), rebuild its catalog, pin versions in a lockfile.",
    no_args_is_help=True,
)
cache_app = typer.Typer(help="The verified download cache ($CELLHUB_CACHE).", no_args_is_help=True)


def publish_cmd(
    kind: str,
    path: Path,
    registry: str | None,
    accept_terms: bool,
    as_json: bool,
    check: PublishCheck,
    scheduler: str | None = None,
) -> None:
    """Publish with ``check``, the publish rule of ``kind`` (see :meth:`hub.registry.Registry.publish`)."""
    reg = Registry(registry)
    ref, sha = reg.publish(path, kind, check=check, accept_terms=accept_terms, executor=scheduler)
    if as_json:
        typer.echo(json.dumps({"ref": str(ref), "manifest_sha256": sha, "registry": reg.url}))
    else:
        console.print(
            f"[green]published[/] {escape(str(ref))} (manifest {sha[:16]}...) to {escape(reg.url)}", highlight=False
        )


def pull_cmd(
    kind: str,
    ref: str,
    registry: str | None,
    locked: bool,
    lockfile: Path,
    as_json: bool,
    split: str | None = None,
    samples: list[str] | None = None,
) -> None:
    r = parse_ref(ref)
    pin = None
    if locked:
        lock = read_lock(lockfile)
        exact, pin = pinned(lock, kind, r.name)
        if r.version not in ("latest", exact.version):
            raise typer.BadParameter(f"{ref} but the lockfile pins {exact}")
        r, registry = exact, registry or lock["registry"]
    got = pull(kind, r, Registry(registry), pin=pin, split=split, samples=samples)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ref": str(got.ref),
                    "path": str(got.path),
                    "manifest_sha256": got.manifest_sha256,
                    "downloaded": got.downloaded,
                    "reused": got.reused,
                    "offline": got.offline,
                    "samples": got.samples,
                }
            )
        )
    else:
        if got.offline:
            print(f"registry unreachable: using the cached {got.ref}", file=sys.stderr)
        if got.samples is not None:
            print(f"pulled {len(got.samples)} sample(s) of {got.ref} (a partial pull)", file=sys.stderr)
        print(got.path)


def list_published(kind: str | None, search: str | None, registry: str | None, as_json: bool) -> None:
    """The published versions of ``kind`` (``None``: both) in a registry, those matching ``search`` only."""
    reg = Registry(registry)
    _print_rows(reg.search(search, kind) if search is not None else reg.list(kind), as_json)


def list_kind(
    kind: str,
    local: bool,
    root: Path | None,
    search: str | None,
    registry: str | None,
    as_json: bool,
    list_local: Callable[[Path | None, bool], None],
) -> None:
    """``cellhub KIND list``: the registry's versions of ``kind``, or with ``--local`` / ``--root`` what
    ``list_local`` finds on this machine."""
    if local or root is not None:
        if search is not None or registry is not None:
            raise typer.BadParameter("--search and --registry list a registry; --local lists the build folder")
        list_local(root, as_json)
    else:
        list_published(kind, search, registry, as_json)


def is_local(ref: str) -> bool:
    """Whether ``info`` means a folder on this machine (it exists, or is written as a path) rather than a
    ``NAME[@VERSION]`` in a registry (names have no slashes)."""
    return Path(ref).exists() or any(s in ref for s in ("/", "\\"))


def info_published(kind: str, ref: str, registry: str | None, as_json: bool) -> None:
    """A published version, from its manifest alone (nothing is downloaded): card title, files, manifest hash."""
    reg = Registry(registry)
    manifest, sha = reg.manifest(kind, ref)
    if as_json:
        typer.echo(json.dumps({"manifest_sha256": sha, **manifest}, indent=1))
        return
    card = manifest["card"]
    size = sum(f["size"] for f in manifest["files"])
    console.print(
        f"[bold]{manifest['name']}@{manifest['version']}[/] — {escape(card.get('title', ''))}", highlight=False
    )
    console.print(
        f"published {manifest['published']}; {len(manifest['files'])} files, {size / 2**20:.1f} MiB; "
        f"manifest sha256 {sha}",
        highlight=False,
    )
    if "terms_accepted" in manifest:
        t = manifest["terms_accepted"]
        console.print(f"terms accepted by {t['by']} at {t['at']}", highlight=False)
    console.print(
        f"pull: cellhub {kind} pull {manifest['name']}@{manifest['version']} --registry {reg.url}", highlight=False
    )


@app.command("list")
def list_(search: SearchOption = None, registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """List the published versions of a registry, datasets and models (one kind: cellhub datasets|models list)."""
    list_published(None, search, registry, as_json)


@app.command()
def reindex(registry: RegistryOption = None) -> None:
    """Rebuild the catalog (index.json) from every committed manifest and result record."""
    index = Registry(registry).reindex()
    n = sum(len(v) for k in KINDS for v in index.get(k, {}).values())
    r = sum(len(v) for v in index.get("results", {}).values())
    console.print(f"[green]reindexed[/] {n} version(s), {r} result(s)", highlight=False)


@app.command()
def lock(
    refs: list[str] = typer.Argument(..., help="NAME[@VERSION] of datasets (models: models/NAME)"),
    registry: RegistryOption = None,
    out: Path = typer.Option(Path(LOCKFILE), help="lockfile to write"),
) -> None:
    """Pin references to exact versions and manifest hashes; `pull --locked` then refuses drift."""
    entries = []
    for r in refs:
        kind, _, name = r.rpartition("/")
        entries.append((kind or "datasets", parse_ref(name)))
    lock_ = write_lock(out, Registry(registry), entries)
    n = sum(len(v) for v in lock_["pins"].values())
    console.print(f"[green]wrote[/] {escape(str(out))}: {n} pin(s)", highlight=False)


@cache_app.command("verify")
def cache_verify(
    ref: str | None = typer.Argument(None, help="NAME[@VERSION] (default: everything cached)"),
    kind: KindOption = None,
    fix: bool = typer.Option(
        False, "--fix", help="remove altered and unknown files (the next pull fetches them again)"
    ),
    as_json: JsonOption = False,
) -> None:
    """Re-hash cached files against their manifests and report anything altered (exit 1 if any remains)."""
    from hub.registry import verify_cache

    rows = verify_cache(kind, ref, fix=fix)
    bad = [r for r in rows if r["problems"]]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
    else:
        for r in rows:
            state = ("[yellow]fixed[/]" if r["fixed"] else "[red]altered[/]") if r["problems"] else "[green]ok[/]"
            console.print(f"{state} {r['kind']}/{escape(r['ref'])}", highlight=False)
            for p in r["problems"]:
                console.print(f"  {escape(p['file'])}: {escape(p['problem'])}", highlight=False)
        console.print(
            f"{len(rows)} cached version(s) checked, {len(bad)} with problems"
            + (" (fixed: pull them again)" if fix and bad else ""),
            highlight=False,
        )
    if bad and not fix:
        raise typer.Exit(1)


def _print_rows(rows: list[dict], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table()
    for col in ("kind", "name@version", "title", "tasks", "organism", "manifest"):
        table.add_column(col)
    for r in rows:  # catalog text is untrusted: no markup, no control sequences reach the terminal
        s = r["summary"] if isinstance(r.get("summary"), dict) else {}
        tasks = t if isinstance(t := s.get("tasks"), list) else []
        cells = (
            r["kind"],
            f"{r['name']}@{r['version']}",
            s.get("title") or "",
            ", ".join(map(str, tasks)),
            s.get("organism") or "",
            str(r.get("manifest_sha256"))[:12],
        )
        table.add_row(*(escape(printable(c, 120)) for c in cells))
    console.print(table)
