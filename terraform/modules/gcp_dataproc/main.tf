# A Dataproc Serverless batch starts running when it is created and cannot be changed afterwards,
# so it is opt-in (create_batch) and named after the run: a new run name is a new batch.
resource "google_dataproc_batch" "paths" {
  count    = var.create_batch ? 1 : 0
  project  = var.project
  location = var.region
  batch_id = var.paths_job.batch_id
  labels   = var.labels

  runtime_config {
    version         = var.paths_job.runtime_version
    container_image = var.paths_job.container_image
    properties      = var.paths_job.properties
  }

  environment_config {
    execution_config {
      service_account = var.paths_job.service_account
      subnetwork_uri  = var.subnetwork_uri == "" ? null : var.subnetwork_uri
      kms_key         = var.kms_key == "" ? null : var.kms_key
      ttl             = var.ttl
    }
  }

  pyspark_batch {
    main_python_file_uri = var.paths_job.main_python_file_uri
    args                 = var.paths_job.args
    python_file_uris     = var.paths_job.python_file_uris
  }
}
