output "bucket" {
  description = "Data bucket (upload code/ and kg/ here)."
  value       = module.storage.bucket
}

output "dataproc_service_account" {
  description = "Service account of the path job's batch."
  value       = module.iam.job_service_account
}

output "ray_service_account" {
  description = "Google account of the Ray pods (annotate the Kubernetes service account with it)."
  value       = module.iam.ray_service_account
}

output "paths_batch_id" {
  description = "Dataproc batch id of the path job."
  value       = module.dataproc.batch_id
}

output "paths_job" {
  description = "The path job definition shared with `medreason-dist submit`."
  value       = module.spec.paths_job
}

output "gcloud_submit_command" {
  description = "The same batch as a gcloud command."
  value       = module.dataproc.gcloud_submit_command
}

output "ray_entrypoints" {
  description = "Entrypoints of the Ray jobs."
  value       = module.spec.ray_entrypoints
}

output "gke_cluster_name" {
  description = "GKE cluster of the Ray jobs."
  value       = module.gke.cluster_name
}

output "kubeconfig_command" {
  description = "Run this to reach the cluster with kubectl."
  value       = module.gke.kubeconfig_command
}
