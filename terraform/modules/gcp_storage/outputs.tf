output "bucket" {
  description = "Name of the data bucket."
  value       = google_storage_bucket.data.name
}

output "log_bucket" {
  description = "Bucket receiving the data bucket's usage logs."
  value       = google_storage_bucket.logs.name
}
