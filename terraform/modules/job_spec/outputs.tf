output "paths_job" {
  description = "The Spark path job: aws {entry_point, arguments, spark_conf, spark_submit_parameters}; gcp {main_python_file_uri, args, python_file_uris, properties, runtime_version, container_image, service_account, batch_id}."
  value       = local.paths_job
}

output "ray_entrypoints" {
  description = "Entrypoints of the Ray jobs (ray job submit / KubeRay RayJob), by job."
  value       = local.ray_entrypoints
}

output "names" {
  description = "Resource names derived from prefix, bucket and run name."
  value       = local.names
}

output "uris" {
  description = "Object-store URIs of the code, KG and run folders."
  value       = local.uris
}

output "batch_id" {
  description = "Dataproc batch id / EMR job run name of the path job."
  value       = local.batch_id
}

output "attempt_prefixes" {
  description = "Bucket-relative prefixes of the runner's write attempts that lifecycle rules expire."
  value       = local.attempt_prefixes
}
