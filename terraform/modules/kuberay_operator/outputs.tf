output "namespace" {
  description = "Namespace of the operator."
  value       = helm_release.kuberay_operator.namespace
}

output "chart_version" {
  description = "Installed chart version."
  value       = helm_release.kuberay_operator.version
}
