"""Concurrent publishers never lose a catalog entry, and readers never see a torn index.json (a local folder
and an S3-compatible server on loopback)."""

from __future__ import annotations

import multiprocessing as mp
import threading

import pytest
import s3fs
from servers import s3_server

from hub.registry import Registry

BENCH = "dsb2018-fluo/instance"
WRITERS, ROUNDS = 6, 3


def _publish(url: str, round_: int, i: int, barrier) -> str:
    barrier.wait()
    record = {"benchmark": BENCH, "model": f"writer-{i}", "value": i / 10, "round": round_, "split": "test"}
    return Registry(url).publish_result(record)


def _race(pool, barrier, url: str, round_: int) -> list[str]:
    return pool.starmap(_publish, [(url, round_, i, barrier) for i in range(WRITERS)])


def _reader(reg: Registry, stop: threading.Event, seen: list) -> None:
    while not stop.is_set():
        try:
            seen.append(len(reg.index().get("results", {}).get(BENCH, {})))
        except Exception as err:  # a torn read would be a JSON error here
            seen.append(err)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("moto")) as endpoint:
        s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir("race")
        yield endpoint


@pytest.fixture(scope="module")
def writers(s3):
    """``WRITERS`` separate processes (spawned, after the S3 server set the AWS_* variables they inherit) and a
    barrier that releases them together."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(WRITERS) as pool:
        yield pool, manager.Barrier(WRITERS)


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_concurrent_publishes_lose_no_catalog_entry(tmp_path, backend, writers):
    url = "s3://race/reg" if backend == "s3" else str(tmp_path / "reg")
    reg = Registry(url)
    stop, seen = threading.Event(), []
    reader = threading.Thread(target=_reader, args=(reg, stop, seen))
    reader.start()
    try:
        published = []
        for round_ in range(ROUNDS):
            published += _race(*writers, url, round_)
            listed = set(Registry(url).index()["results"][BENCH])
            assert set(published) <= listed, f"round {round_}: lost {len(set(published) - listed)} entries"
    finally:
        stop.set()
        reader.join()
    assert not [s for s in seen if isinstance(s, Exception)], "a reader saw a torn or invalid index.json"
    assert len(set(published)) == WRITERS * ROUNDS
    board = Registry(url).results(BENCH)
    assert sorted(r["model"] for r in board) == sorted([f"writer-{i}" for i in range(WRITERS)] * ROUNDS)
