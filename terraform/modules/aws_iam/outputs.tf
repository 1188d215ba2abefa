output "job_role_arn" {
  description = "executionRoleArn of EMR Serverless job runs."
  value       = aws_iam_role.job.arn
}

output "ray_role_arn" {
  description = "Role for the Ray pods' service account (annotation eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.ray.arn
}
