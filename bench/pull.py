"""Registry pull throughput: hub.registry.pull over HTTP (parallel, SHA-256 verified) vs a plain sequential
fsspec copy of the same files from the same server.

Workload: ctc-gowt1 published into a temporary local registry folder, served read-only by a real web server
process on loopback: ``python -m hub.serve REGISTRY PORT`` (Python's threading http.server speaking HTTP/1.1 with
keep-alive and TCP_NODELAY, as production web servers do), or with ``--server stdlib`` ``python -m http.server``
(HTTP/1.0: a new TCP connection for every file).
  - hub: ``pull("datasets", "NAME@VERSION", Registry("http://127.0.0.1:PORT"))`` into an empty $CELLHUB_CACHE
    (manifest fetch, parallel download, per-file SHA-256 verification, .complete marker);
  - anchor: ``fsspec.filesystem("http").get_file(url, local)`` for manifest.json and then every file the manifest
    lists, one after another, into an empty folder, no verification.
Both run in this one process against the same server, each repeat into a fresh empty destination (in /dev/shm
by default: on a disk that slows down under repeated write + delete, e.g. ext4 mounted with ``discard``, both
sides fall 2x over a run and the ratio says more about the disk than the pull); the order alternates between
repeats. Rates are MB/s (10^6 bytes of the manifest's files) and files/s; medians over --repeats.

    .venv/bin/python bench/pull.py [--dataset PATH] [--repeats 5] [--server hub|stdlib] [--dest DIR]

Without --dataset, ctc-gowt1 is built from its recipe into a temporary folder (about 30 s).
Ends with one line: ``RATIO pull_vs_copy <hub MB/s / copy MB/s>`` (higher = hub faster).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import fsspec

from hub.curate import publish_dataset
from hub.curate.recipe import build_dataset
from hub.registry import Registry, pull

os.environ["CELLHUB_NO_PROGRESS"] = "1"  # read at call time, like CELLHUB_CACHE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SHM = Path("/dev/shm")  # memory: a disk that slows down under repeated write + delete would blur the network path
SERVERS = {
    "hub": lambda folder, port: ["-m", "hub.serve", str(folder), str(port)],
    "stdlib": lambda folder, port: ["-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(folder)],
}


def serve(folder: Path, server: str) -> tuple[subprocess.Popen, str]:
    """Start a static web server on ``folder`` and wait until it answers; returns (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, *SERVERS[server](folder, port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/index.json", timeout=1).close()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"web server on {url} did not start") from None
            time.sleep(0.1)


def hub_pull(registry: Registry, ref: str, dest: Path) -> int:
    os.environ["CELLHUB_CACHE"] = str(dest)  # hub.config reads it at call time
    return pull("datasets", ref, registry).downloaded


def plain_copy(base: str, manifest: dict, dest: Path) -> int:
    fs = fsspec.filesystem("http")
    version = f"{base}/datasets/{manifest['name']}/{manifest['version']}"
    fs.get_file(f"{version}/manifest.json", str(dest / "manifest.json"))
    for f in manifest["files"]:
        local = dest / f["path"]
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(f"{version}/{manifest['root']}/{f['path']}", str(local))
    return len(manifest["files"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, help="a built curated dataset folder (default: build ctc-gowt1)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--dest",
        type=Path,
        default=SHM if SHM.is_dir() else None,
        help="folder for the downloads (default: /dev/shm where it exists, else the temp folder)",
    )
    ap.add_argument(
        "--server",
        choices=sorted(SERVERS),
        default="hub",
        help="hub: HTTP/1.1 keep-alive (default); stdlib: python -m http.server, HTTP/1.0",
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    proc = None
    try:
        if args.dataset is None:
            print("building ctc-gowt1 into", tmp)
            _, args.dataset = build_dataset("ctc-gowt1", out=tmp / "ctc-gowt1")
        ref, _ = publish_dataset(Registry(tmp / "registry"), args.dataset, accept_terms=True)
        proc, base = serve(tmp / "registry", args.server)
        registry = Registry(base)
        manifest, _ = registry.manifest("datasets", ref)
        nfiles, mb = len(manifest["files"]), sum(f["size"] for f in manifest["files"]) / 1e6
        print(
            f"{ref}: {nfiles} files, {mb:.1f} MB, served by {args.server} server at {base}, "
            f"downloaded into {args.dest or tmp}"
        )

        rates: dict[str, list[float]] = {"hub": [], "copy": []}
        runs = [("hub", lambda d: hub_pull(registry, str(ref), d)), ("copy", lambda d: plain_copy(base, manifest, d))]
        for r in range(args.repeats):
            for name, fn in runs if r % 2 == 0 else runs[::-1]:
                dest = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=args.dest or tmp))
                t0 = time.perf_counter()
                got = fn(dest)
                rates[name].append(time.perf_counter() - t0)
                assert got == nfiles, f"{name} fetched {got} of {nfiles} files"
                shutil.rmtree(dest)
            h, c = rates["hub"][-1], rates["copy"][-1]
            print(
                f"repeat {r}: hub {mb / h:7.1f} MB/s {nfiles / h:7.1f} files/s   "
                f"copy {mb / c:7.1f} MB/s {nfiles / c:7.1f} files/s"
            )
        hub, copy = (statistics.median(mb / s for s in rates[k]) for k in ("hub", "copy"))
        print(
            f"median hub pull   {hub:7.1f} MB/s {hub * nfiles / mb:7.1f} files/s"
            " (8 requests in flight, SHA-256 verified)"
        )
        print(f"median plain copy {copy:7.1f} MB/s {copy * nfiles / mb:7.1f} files/s (sequential get_file, unverified)")
        print(f"RATIO pull_vs_copy {hub / copy:.2f}")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
