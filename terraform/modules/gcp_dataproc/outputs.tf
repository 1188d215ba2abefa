output "batch_id" {
  description = "Id of the path job's batch."
  value       = var.paths_job.batch_id
}

output "batch_state" {
  description = "State of the batch when Terraform last read it (null when not created)."
  value       = one(google_dataproc_batch.paths[*].state)
}

output "gcloud_submit_command" {
  description = "The same batch as a gcloud command, for later runs without Terraform."
  value = join(" ", concat([
    "gcloud dataproc batches submit pyspark", var.paths_job.main_python_file_uri,
    "--project=${var.project}", "--region=${var.region}", "--batch=${var.paths_job.batch_id}",
    "--version=${var.paths_job.runtime_version}", "--container-image=${var.paths_job.container_image}",
    "--service-account=${var.paths_job.service_account}",
    "--py-files=${join(",", var.paths_job.python_file_uris)}",
    "--properties=${join(",", [for k, v in var.paths_job.properties : "${k}=${v}"])}",
    "--",
  ], var.paths_job.args))
}
