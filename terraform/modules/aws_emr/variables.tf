variable "name" {
  description = "Name of the EMR Serverless application."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_./#-]{0,63}$", var.name))
    error_message = "name must be 1-64 characters of letters, digits, _ . / # -."
  }
}

variable "release_label" {
  description = "EMR release; emr-spark-8.0.0 ships Spark 4, which the GraphFrames spark4 build needs."
  type        = string
  default     = "emr-spark-8.0.0"

  validation {
    condition     = can(regex("^emr-(spark-)?[0-9]+\\.[0-9]+\\.[0-9]+$", var.release_label))
    error_message = "release_label must look like emr-spark-8.0.0 or emr-7.9.0."
  }
}

variable "initial_capacity" {
  description = "Pre-initialized workers kept warm while the application is started (worker_count 0 disables a type)."
  type = object({
    driver_count    = number
    executor_count  = number
    driver_cpu      = optional(string, "4 vCPU")
    driver_memory   = optional(string, "16 GB")
    executor_cpu    = optional(string, "4 vCPU")
    executor_memory = optional(string, "16 GB")
    disk            = optional(string, "20 GB")
  })
  default = { driver_count = 0, executor_count = 0 }

  validation {
    condition     = var.initial_capacity.driver_count >= 0 && var.initial_capacity.executor_count >= 0 && var.initial_capacity.executor_count <= 1000
    error_message = "initial_capacity counts must be between 0 and 1000."
  }
}

variable "maximum_capacity" {
  description = "Upper bound of all workers of the application together."
  type = object({
    cpu    = string
    memory = string
    disk   = optional(string, "1000 GB")
  })
  default = { cpu = "200 vCPU", memory = "800 GB" }

  validation {
    condition     = can(regex("^[0-9]+ vCPU$", var.maximum_capacity.cpu)) && can(regex("^[0-9]+ GB$", var.maximum_capacity.memory)) && can(regex("^[0-9]+ GB$", var.maximum_capacity.disk))
    error_message = "maximum_capacity must be like { cpu = \"200 vCPU\", memory = \"800 GB\", disk = \"1000 GB\" }."
  }
}

variable "idle_timeout_minutes" {
  description = "Minutes without jobs after which the application stops (and stops billing warm workers)."
  type        = number
  default     = 15

  validation {
    condition     = var.idle_timeout_minutes >= 1 && var.idle_timeout_minutes <= 10080
    error_message = "idle_timeout_minutes must be between 1 and 10080."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the jobs. spark.jars.packages downloads from Maven Central, so they need a NAT route; empty = no VPC attachment."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids must be subnet ids (subnet-...)."
  }
}

variable "security_group_ids" {
  description = "Security groups of the jobs when subnet_ids is set."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.security_group_ids : can(regex("^sg-[0-9a-f]+$", s))])
    error_message = "security_group_ids must be security group ids (sg-...)."
  }
}

variable "bucket" {
  description = "Data bucket; the StartJobRun request document is written under its code/ prefix."
  type        = string
}

variable "kms_key_arn" {
  description = "Key that encrypts the request document (the bucket's key)."
  type        = string
}

variable "job_role_arn" {
  description = "executionRoleArn of the job runs."
  type        = string
}

variable "paths_job" {
  description = "job_spec's paths_job output for cloud = aws."
  type = object({
    entry_point             = string
    arguments               = list(string)
    spark_conf              = map(string)
    spark_submit_parameters = string
  })
}

variable "job_run_name" {
  description = "Name of the job run (job_spec names.job_run_name)."
  type        = string
}

variable "request_key" {
  description = "Key of the StartJobRun request document in the bucket (job_spec names.job_request_key)."
  type        = string

  validation {
    condition     = startswith(var.request_key, "code/") && endswith(var.request_key, ".json")
    error_message = "request_key must be a .json key under code/."
  }
}

variable "log_prefix" {
  description = "Bucket prefix of the job runs' driver and executor logs."
  type        = string
  default     = "logs/emr/"
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
