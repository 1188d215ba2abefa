"""Committed datasets as Ray Datasets: workers read the files and write the results.

The driver lists files (from the manifest) and commits what the workers wrote; rows stay on the
workers. :func:`union` builds a dataset from other datasets' files with storage-side copies and
the hashes their manifests already hold, so not even the workers read them.
"""

from __future__ import annotations

import posixpath
from typing import Any, Callable

import pyarrow as pa

from medreason_dist import storage


# CPUs a read or write task reserves. They wait on storage more than they compute, and a whole
# CPU each (Ray's default) does not fit beside a run's shared LLM engine on a small node: with
# the engine's bundle holding one of two CPUs and an actor holding a quarter, a 1-CPU task never
# got scheduled and the stage waited forever.
IO_TASK_CPUS = 0.25


def _read_files(batch: pa.Table, *, columns: list[str] | None, options: storage.StorageOptions | None) -> pa.Table:
    """On a worker: the rows of the files named in ``batch`` (``file``, ``base``)."""
    import pyarrow.dataset as pds

    tables = []
    for file_uri, base_uri in zip(batch.column("file").to_pylist(), batch.column("base").to_pylist()):
        fs, path = storage.filesystem(file_uri, options)
        _, base = storage.filesystem(base_uri, options)
        # Hive partition folders of a plain Parquet folder become columns, as in storage.read_table.
        dataset = pds.dataset([path], filesystem=fs, format="parquet", partitioning="hive",
                              partition_base_dir=base)
        tables.append(dataset.to_table(columns=columns))
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def read(uris: str | list[str], options: storage.StorageOptions | None = None, columns: list[str] | None = None):
    """The committed files of one or more datasets (or plain Parquet folders) as one Ray Dataset.

    The driver takes the file list from the manifests and hands it to workers, one file per
    task, which read the files themselves: no listing of storage (Ray's own Parquet reader lists
    again, in a task that reserves a whole CPU and cannot be told otherwise), no rows through
    the driver.
    """
    import ray

    uris = [uris] if isinstance(uris, str) else uris
    files = [{"file": f, "base": uri} for uri in uris for f in storage.describe(uri, options).files]
    if not files:
        raise storage.IncompleteDatasetError(f"no data files in {', '.join(uris)}")
    return ray.data.from_items(files, override_num_blocks=len(files)).map_batches(
        _read_files, batch_size=1, batch_format="pyarrow", num_cpus=IO_TASK_CPUS,
        fn_kwargs={"columns": columns, "options": options})


def write(ds, uri: str, *, stage: str, schema: pa.Schema, options: storage.StorageOptions | None = None,
          **manifest: Any) -> storage.Manifest:
    """Workers write ``ds`` into a fresh attempt of ``uri``; the driver commits it (footers only)."""
    attempt = storage.new_attempt(uri)
    fs, path = storage.filesystem(attempt, options)
    fs.create_dir(path, recursive=True)
    ds.write_parquet(path, filesystem=fs, ray_remote_args={"num_cpus": IO_TASK_CPUS})
    return storage.commit_attempt(uri, attempt, stage=stage, schema=schema, options=options, **manifest)


def transform(inputs: str | list[str], out_uri: str, fn: Callable[[pa.Table], pa.Table], *, stage: str,
              schema: pa.Schema, options: storage.StorageOptions | None = None, num_cpus: float = 0.25,
              **manifest: Any) -> storage.Manifest:
    """``fn`` over every batch of the input datasets, on workers, committed as ``out_uri``."""
    if sum(storage.describe(u, options).rows for u in ([inputs] if isinstance(inputs, str) else inputs)) == 0:
        return storage.write_table(out_uri, schema.empty_table(), stage=stage, options=options, **manifest)
    ds = read(inputs, options).map_batches(lambda t: fn(t).cast(schema), batch_format="pyarrow", num_cpus=num_cpus)
    return write(ds, out_uri, stage=stage, schema=schema, options=options, **manifest)


def union(inputs: list[str], out_uri: str, *, stage: str, schema: pa.Schema,
          options: storage.StorageOptions | None = None, **manifest: Any) -> storage.Manifest:
    """The rows of several committed datasets with one schema, by copying their files."""
    attempt = storage.new_attempt(out_uri)
    fs, attempt_path = storage.filesystem(attempt, options)
    fs.create_dir(attempt_path, recursive=True)
    known = []
    for i, uri in enumerate(inputs):
        source = storage.read_manifest(uri, options)
        src_fs, root = storage.filesystem(uri, options)
        for j, entry in enumerate(source.files):
            if entry.rows == 0:
                continue
            name = f"input{i:03d}-{j:05d}.parquet"
            fs.copy_file(posixpath.join(root, entry.path), posixpath.join(attempt_path, name))
            known.append({"path": name, "rows": entry.rows, "bytes": entry.bytes, "sha256": entry.sha256})
    return storage.commit_attempt(out_uri, attempt, stage=stage, schema=schema, options=options, known_files=known,
                                  **manifest)


def stream_batches(uri: str, options: storage.StorageOptions | None = None):
    """Record batches of a committed dataset, read file by file (for a worker task)."""
    import pyarrow.parquet as pq

    for file_uri in storage.describe(uri, options).files:
        fs, path = storage.filesystem(file_uri, options)
        yield from pq.ParquetFile(fs.open_input_file(path)).iter_batches()

