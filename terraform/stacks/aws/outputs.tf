output "bucket" {
  description = "Data bucket (upload code/ and kg/ here)."
  value       = module.storage.bucket
}

output "emr_application_id" {
  description = "EMR Serverless application id."
  value       = module.emr.application_id
}

output "emr_job_role_arn" {
  description = "executionRoleArn of the path job."
  value       = module.iam.job_role_arn
}

output "ray_role_arn" {
  description = "IRSA role of the Ray pods' service account."
  value       = module.iam.ray_role_arn
}

output "start_job_run_request" {
  description = "StartJobRun body of the path job (aws emr-serverless start-job-run --cli-input-json)."
  value       = module.emr.start_job_run_request
}

output "start_job_run_uri" {
  description = "Where that body is stored in the bucket."
  value       = module.emr.start_job_run_uri
}

output "paths_job" {
  description = "The path job definition shared with `medreason-dist submit`."
  value       = module.spec.paths_job
}

output "ray_entrypoints" {
  description = "Entrypoints of the Ray jobs."
  value       = module.spec.ray_entrypoints
}

output "eks_cluster_name" {
  description = "EKS cluster of the Ray jobs."
  value       = module.eks.cluster_name
}

output "kubeconfig_command" {
  description = "Run this to reach the cluster with kubectl."
  value       = module.eks.kubeconfig_command
}
