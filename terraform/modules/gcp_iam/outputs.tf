output "job_service_account" {
  description = "E-mail of the Dataproc batch's service account."
  value       = google_service_account.job.email
}

output "node_service_account" {
  description = "E-mail of the GKE nodes' service account."
  value       = google_service_account.node.email
}

output "ray_service_account" {
  description = "E-mail of the Ray pods' Google account (annotation iam.gke.io/gcp-service-account)."
  value       = google_service_account.ray.email
}
