"""Build into the registry: ``cellhub datasets build NAME --publish`` (workers convert and check each sample in
scratch space and upload it, no dataset folder) against the two-step path it replaces, a build into a folder the
workers share followed by a publish from it on the same cluster, side by side in one run.

Both run a recipe of the real mirror on a ``distributed.LocalCluster`` of 2 worker processes (one thread each)
and publish to an S3-compatible server (moto) on loopback, each into its own empty registry; the two published
versions are checked to list the same files with the same SHA-256. Each path runs ``--repeat`` times, alternated;
the median counts.

    .venv/bin/python bench/build_into.py [--dataset dsb2018-fluo] [--repeat 2]

Ends with ``RATIO build_into_vs_build_then_publish <two-step seconds / build-into seconds>`` (above 1: building
into the registry is faster).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import distributed

from hub.config import data_mirror
from hub.curate import publish_dataset
from hub.curate.recipe import build_dataset, build_into
from hub.registry import Registry

os.environ["CELLHUB_NO_PROGRESS"] = "1"
BUCKET = "bench"


def moto_server(log: Path) -> tuple[subprocess.Popen, str]:
    """An S3-compatible server on loopback, and its endpoint; this process's AWS settings point at it (the
    cluster's workers, started after, inherit them)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=open(log, "wb")
    )
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(endpoint + "/", timeout=1)
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.1)
    return proc, endpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="dsb2018-fluo")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--source", type=Path, default=None)
    args = ap.parse_args()
    source = args.source or data_mirror()
    import s3fs

    with tempfile.TemporaryDirectory(prefix="cellhub-bench-") as tmp:
        server, endpoint = moto_server(Path(tmp) / "moto.log")
        try:
            s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir(BUCKET)
            with (
                distributed.LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
                ) as c,
                distributed.Client(c) as client,
            ):
                times: dict[str, list[float]] = {"two_step": [], "build_into": []}
                files: dict[str, list] = {}
                for i in range(args.repeat):
                    for path in ("two_step", "build_into") if i % 2 == 0 else ("build_into", "two_step"):
                        registry = Registry(f"s3://{BUCKET}/{path}-{i}")
                        start = time.perf_counter()
                        if path == "two_step":
                            folder = Path(tmp) / f"built-{i}"
                            build_dataset(args.dataset, source=source, out=folder, executor=client)
                            ref, _ = publish_dataset(registry, folder, accept_terms=True, executor=client)
                        else:
                            _, ref, _ = build_into(
                                args.dataset, registry, source=source, accept_terms=True, executor=client
                            )
                        times[path].append(time.perf_counter() - start)
                        files[path] = registry.manifest("datasets", ref)[0]["files"]
                        print(f"{path:>10} run {i}: {times[path][-1]:.1f} s ({len(files[path])} files)", flush=True)
        finally:
            server.terminate()
            server.wait(10)
    assert files["two_step"] == files["build_into"], "the two paths published different files"
    a, b = (statistics.median(times[k]) for k in ("two_step", "build_into"))
    n = len(files["build_into"])
    print(
        f"{args.dataset}, {n} files: a build into a folder + its publish {a:.1f} s, a build into the registry {b:.1f} s"
    )
    print(f"RATIO build_into_vs_build_then_publish {a / b:.2f}")


if __name__ == "__main__":
    main()
