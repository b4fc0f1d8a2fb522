"""Storage layer: a registry on any fsspec URL (local, s3://, http(s)://, hf://) with immutable versions,
manifests, publish, pull into a verified cache, and lockfiles."""

from hub.registry._fs import last_remote
from hub.registry.cache import Pulled, cached, local_path, pull, read_lock, verify_cache, write_lock
from hub.registry.ref import Ref, parse_ref
from hub.registry.registry import Registry
from hub.registry.stream import StreamedDataset, stream_dataset

__all__ = [
    "Pulled",
    "Ref",
    "Registry",
    "StreamedDataset",
    "cached",
    "last_remote",
    "local_path",
    "parse_ref",
    "pull",
    "read_lock",
    "stream_dataset",
    "verify_cache",
    "write_lock",
]
