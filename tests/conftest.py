"""Shared fixtures: a real S3-protocol server on loopback, offline Hugging Face, packaged data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from net_helpers import free_port, wait_for_port

REPO = Path(__file__).resolve().parent.parent

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")




@pytest.fixture(scope="session")
def s3_server():
    """moto's standalone S3 server as a separate process on 127.0.0.1 (a real HTTP endpoint)."""
    port = free_port()
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for_port(port, 30):
        proc.kill()
        raise RuntimeError("moto_server did not start")
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket on the loopback S3 server; returns (bucket, StorageOptions)."""
    import uuid

    import boto3

    from medreason_dist.storage import StorageOptions

    name = f"test-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name, StorageOptions(s3_endpoint_url=s3_server, s3_region="us-east-1")


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    return REPO / "medreason_dist" / "data" / "eval"
