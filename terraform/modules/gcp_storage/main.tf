resource "google_storage_bucket" "data" {
  name                        = var.bucket
  location                    = var.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  logging {
    log_bucket        = google_storage_bucket.logs.name
    log_object_prefix = "gcs/${var.bucket}"
  }

  lifecycle_rule {
    action {
      type = "AbortIncompleteMultipartUpload"
    }
    condition {
      age = 1
    }
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      days_since_noncurrent_time = var.noncurrent_expiry_days
      with_state                 = "ARCHIVED"
    }
  }

  # GCS conditions match prefixes only, so each dataset's .attempts/ folder is listed; the next
  # commit of a dataset removes its stale attempts anyway.
  dynamic "lifecycle_rule" {
    for_each = length(var.attempt_prefixes) > 0 ? [1] : []
    content {
      action {
        type = "Delete"
      }
      condition {
        age            = var.attempt_expiry_days
        matches_prefix = var.attempt_prefixes
        with_state     = "ANY"
      }
    }
  }
}

resource "google_storage_bucket" "logs" {
  #checkov:skip=CKV_GCP_62:This is the usage-log target; logging it into itself would loop.
  name                        = "${var.bucket}-logs"
  location                    = var.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      age        = var.access_log_days
      with_state = "ANY"
    }
  }
}

# Cloud Storage writes usage logs as this group; it needs to create objects in the log bucket.
resource "google_storage_bucket_iam_member" "log_writer" {
  bucket = google_storage_bucket.logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}
