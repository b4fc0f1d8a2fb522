"""The field's own tools on the hub's benchmarks: each trained and run by its own code, in its own environment,
on the benchmark's train split, its predictions scored by the hub's harness into ``reproduced`` records.

Above ``hub.bench`` and ``hub.baselines`` (a linker peer links a baseline's detections); beside ``hub.site``."""

from hub.peers.handoff import input_channels, write_handoff
from hub.peers.publish import check_record, install
from hub.peers.run import RunReport, run_peer, save_record
from hub.peers.spec import Peer, PeerBenchmarkRun, PeerSpec, get_peer, peers, peers_dir

__all__ = [
    "Peer",
    "PeerBenchmarkRun",
    "PeerSpec",
    "RunReport",
    "check_record",
    "get_peer",
    "install",
    "input_channels",
    "peers",
    "peers_dir",
    "run_peer",
    "save_record",
    "write_handoff",
]
