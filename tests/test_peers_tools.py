"""Each peer tool end to end in its own environment (``make peers``), in quick mode: the hand-off of the real
benchmark data, a few training steps by the tool's own code, predictions of the whole scored split, and the
hub's scoring. Marked ``peers``: skipped where the tool's environment is not installed (CI installs none:
TensorFlow and a second PyTorch are not the hub's to carry)."""

from __future__ import annotations

import pytest

from hub.bench import get_benchmark
from hub.peers import peers, run_peer

RUNS = [(peer, run) for peer in peers() for run in peer.spec.runs]


@pytest.mark.peers
@pytest.mark.parametrize(("peer", "run"), RUNS, ids=[f"{p.name}-{r.benchmark}" for p, r in RUNS])
def test_peer_runs_end_to_end_in_quick_mode(peer, run, built):
    if not peer.ready:
        pytest.skip(f"peer {peer.name} has no environment (make peers)")
    bench = get_benchmark(run.benchmark)
    dataset = built(bench.dataset.partition("@")[0])
    results = run_peer(peer, run.benchmark, quick=True, dataset=dataset, log=lambda m: None)
    assert [r.benchmark for r in results] == [run.benchmark, *run.also]
    for r in results:
        assert r.model == f"{peer.name}-quick" and r.source == "reproduced" and r.peer.tool == peer.spec.package
        assert r.split_sha256 == bench.split_sha256 and r.per_sample and r.value is not None
