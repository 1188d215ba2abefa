"""`medreason-dist submit`: send the Spark path job or a Ray job to a cloud and follow it.

One module per target (emr, dataproc, ray_jobs, kuberay); each turns the config into the exact
request (:func:`build`, printed by ``--dry-run``) and sends it (:func:`submit`), returning a poll
function that :mod:`.wait` turns into a single progress line. The values come from spec.py,
which follows the contract the Terraform job definitions and cluster manifests also follow.
"""
