variable "project" {
  description = "Project id."
  type        = string
}

variable "region" {
  description = "Region of the batch (the bucket's region keeps reads local)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as us-central1."
  }
}

variable "create_batch" {
  description = "Create (that is, start) the path job's batch. Leave false until code/ and kg/ are uploaded; each run name is one batch."
  type        = bool
  default     = false
}

variable "paths_job" {
  description = "job_spec's paths_job output for cloud = gcp."
  type = object({
    main_python_file_uri = string
    args                 = list(string)
    python_file_uris     = list(string)
    properties           = map(string)
    runtime_version      = string
    container_image      = string
    service_account      = string
    batch_id             = string
  })
}

variable "subnetwork_uri" {
  description = "Subnetwork of the batch (Private Google Access on; a Cloud NAT route for Maven downloads of spark.jars.packages). Empty: the project's default network."
  type        = string
  default     = ""
}

variable "kms_key" {
  description = "Cloud KMS key that encrypts the batch's disks and staging data; empty: Google-managed."
  type        = string
  default     = ""

  validation {
    condition     = var.kms_key == "" || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key))
    error_message = "kms_key must be a full Cloud KMS key name."
  }
}

variable "ttl" {
  description = "Longest time the batch may run."
  type        = string
  default     = "14400s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.ttl))
    error_message = "ttl must be seconds such as 14400s."
  }
}

variable "labels" {
  description = "Labels of the batch."
  type        = map(string)
  default     = {}
}
