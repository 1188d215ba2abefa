variable "cloud" {
  description = "Which cloud the definition is for: \"aws\" (EMR Serverless) or \"gcp\" (Dataproc Serverless)."
  type        = string

  validation {
    condition     = contains(["aws", "gcp"], var.cloud)
    error_message = "cloud must be \"aws\" or \"gcp\"."
  }
}

variable "bucket" {
  description = "Bucket holding code/, kg/ and runs/ (the same layout on S3 and GCS)."
  type        = string

  # The rules both clouds accept: 3-63 characters, lowercase letters, digits and hyphens, starting
  # and ending with a letter or digit. Dots are refused: they break TLS for virtual-hosted S3 URLs
  # and need domain verification on GCS.
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket must be 3-63 characters of lowercase letters, digits and hyphens, starting and ending with a letter or digit."
  }

  validation {
    condition     = length(var.bucket) <= 58
    error_message = "bucket must be at most 58 characters, so that its access-log bucket \"<bucket>-logs\" fits in 63."
  }

  validation {
    condition     = !can(regex("--", var.bucket)) && !startswith(var.bucket, "xn-") && !startswith(var.bucket, "goog") && !endswith(var.bucket, "-s3alias")
    error_message = "bucket must not contain \"--\", start with \"xn-\" or \"goog\", or end with \"-s3alias\" (names the clouds reserve)."
  }
}

variable "run_name" {
  description = "Run name R: outputs go to <bucket>/runs/R and the Dataproc batch is <prefix>-paths-R."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", var.run_name))
    error_message = "run_name must be lowercase letters, digits and hyphens, starting and ending with a letter or digit."
  }

  # Dataproc batch ids are at most 63 characters; the id is "<prefix>-paths-<run_name>".
  validation {
    condition     = length("${var.prefix}-paths-${var.run_name}") <= 63
    error_message = "\"<prefix>-paths-<run_name>\" must be at most 63 characters (a Dataproc batch id)."
  }
}

variable "prefix" {
  description = "Prefix of every resource name (application, roles, clusters, batch id)."
  type        = string
  default     = "medreason"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-20 characters: a lowercase letter, then lowercase letters, digits or hyphens, ending with a letter or digit."
  }
}

variable "max_hops" {
  description = "Longest KG path searched between a question node and an answer node."
  type        = number
  default     = 3

  validation {
    condition     = var.max_hops >= 1 && var.max_hops <= 5 && floor(var.max_hops) == var.max_hops
    error_message = "max_hops must be a whole number from 1 to 5."
  }
}

variable "max_paths" {
  description = "Paths kept per pair (a seeded sample above it)."
  type        = number
  default     = 50

  validation {
    condition     = var.max_paths >= 1 && var.max_paths <= 10000 && floor(var.max_paths) == var.max_paths
    error_message = "max_paths must be a whole number from 1 to 10000."
  }
}

variable "seed" {
  description = "Seed of the path sampling."
  type        = number
  default     = 0

  validation {
    condition     = var.seed >= 0 && floor(var.seed) == var.seed
    error_message = "seed must be a whole number >= 0."
  }
}

variable "engine" {
  description = "Path engine of jobs/kg_paths.py."
  type        = string
  default     = "graphframes"

  validation {
    condition     = contains(["dataframe", "graphframes"], var.engine)
    error_message = "engine must be \"dataframe\" or \"graphframes\" (the choices of jobs/kg_paths.py)."
  }
}

variable "graphframes_package" {
  description = "Maven coordinate put in spark.jars.packages (GraphFrames built for Spark 4 / Scala 2.13)."
  type        = string
  default     = "io.graphframes:graphframes-spark4_2.13:0.10.0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+:[A-Za-z0-9_.+-]+$", var.graphframes_package))
    error_message = "graphframes_package must be a Maven coordinate group:artifact:version."
  }
}

variable "dataproc_runtime_version" {
  description = "Dataproc Serverless runtime (3.0 ships Spark 4, matching the GraphFrames spark4 build)."
  type        = string
  default     = "3.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+$", var.dataproc_runtime_version))
    error_message = "dataproc_runtime_version must look like \"3.0\"."
  }
}

variable "container_image" {
  description = "Custom container image of the Dataproc batch (gcp only; the job's Python dependencies live in it)."
  type        = string
  default     = ""

  validation {
    condition     = var.cloud != "gcp" || can(regex("^[a-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$", var.container_image))
    error_message = "container_image is required for gcp: a registry/path:tag or registry/path@sha256:digest reference."
  }
}

variable "service_account" {
  description = "E-mail of the service account the Dataproc batch runs as (gcp only)."
  type        = string
  default     = ""

  validation {
    condition     = var.cloud != "gcp" || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\\.iam\\.gserviceaccount\\.com$", var.service_account))
    error_message = "service_account is required for gcp: a service account e-mail (name@project.iam.gserviceaccount.com)."
  }
}
