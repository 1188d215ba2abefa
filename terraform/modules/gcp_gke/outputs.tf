output "cluster_name" {
  description = "GKE cluster name."
  value       = google_container_cluster.this.name
}

output "endpoint" {
  description = "Private API server address."
  value       = google_container_cluster.this.endpoint
}

output "ca_certificate" {
  description = "Base64 CA bundle of the API server."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
}

output "kubeconfig_command" {
  description = "Adds the cluster to ~/.kube/config with the caller's gcloud credentials."
  value       = "gcloud container clusters get-credentials ${google_container_cluster.this.name} --location ${var.location} --project ${var.project} --internal-ip"
}
