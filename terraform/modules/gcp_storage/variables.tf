variable "bucket" {
  description = "Name of the data bucket (code/, kg/, runs/, raw/, checkpoints/)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,56}[a-z0-9]$", var.bucket)) && !startswith(var.bucket, "goog")
    error_message = "bucket must be 3-58 lowercase letters, digits or hyphens, not starting with \"goog\"."
  }
}

variable "location" {
  description = "Bucket location; the region of Dataproc and GKE keeps reads in-region."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z]+(-[A-Za-z0-9]+)*$", var.location))
    error_message = "location must be a region or multi-region such as us-central1 or US."
  }
}

variable "attempt_prefixes" {
  description = "Bucket-relative prefixes of abandoned write attempts to delete (job_spec's attempt_prefixes)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.attempt_prefixes : endswith(p, "/.attempts/") && !startswith(p, "/")])
    error_message = "each attempt prefix must be bucket-relative and end with \"/.attempts/\"."
  }
}

variable "attempt_expiry_days" {
  description = "Days after which an attempt folder nobody committed is deleted."
  type        = number
  default     = 7

  validation {
    condition     = var.attempt_expiry_days >= 1
    error_message = "attempt_expiry_days must be at least 1."
  }
}

variable "noncurrent_expiry_days" {
  description = "Days a replaced or deleted object version is kept."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_expiry_days >= 1
    error_message = "noncurrent_expiry_days must be at least 1."
  }
}

variable "access_log_days" {
  description = "Days usage logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_days >= 30
    error_message = "access_log_days must be at least 30."
  }
}

variable "labels" {
  description = "Labels of every resource."
  type        = map(string)
  default     = {}
}
