output "bucket" {
  description = "Name of the data bucket."
  value       = aws_s3_bucket.data.id
}

output "bucket_arn" {
  description = "ARN of the data bucket."
  value       = aws_s3_bucket.data.arn
}

output "kms_key_arn" {
  description = "ARN of the key that encrypts the data bucket."
  value       = aws_kms_key.data.arn
}

output "log_bucket" {
  description = "Bucket receiving the data bucket's access logs."
  value       = aws_s3_bucket.logs.id
}
