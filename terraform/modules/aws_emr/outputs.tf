output "application_id" {
  description = "EMR Serverless application id."
  value       = aws_emrserverless_application.spark.id
}

output "application_arn" {
  description = "EMR Serverless application ARN."
  value       = aws_emrserverless_application.spark.arn
}

output "start_job_run_request" {
  description = "StartJobRun request body of the path job, as JSON."
  value       = jsonencode(local.start_job_run)
}

output "start_job_run_uri" {
  description = "Where the same JSON document is stored."
  value       = "s3://${var.bucket}/${aws_s3_object.start_job_run.key}"
}
