variable "prefix" {
  description = "Prefix of the role names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "bucket_arn" {
  description = "ARN of the data bucket the roles may use."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.bucket_arn))
    error_message = "bucket_arn must be an S3 bucket ARN."
  }
}

variable "kms_key_arn" {
  description = "ARN of the bucket's KMS key."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "job_read_prefixes" {
  description = "Prefixes the Spark path job only reads."
  type        = list(string)
  default     = ["code/", "kg/"]
}

variable "job_write_prefixes" {
  description = "Prefixes the Spark path job reads and writes (its outputs and EMR logs)."
  type        = list(string)
  default     = ["runs/", "logs/emr/"]
}

variable "ray_read_prefixes" {
  description = "Prefixes the Ray jobs only read."
  type        = list(string)
  default     = ["code/", "raw/"]
}

variable "ray_write_prefixes" {
  description = "Prefixes the Ray jobs read and write (KG ingest, runs, SFT checkpoints)."
  type        = list(string)
  default     = ["kg/", "runs/", "checkpoints/"]
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider (for the Ray pods' IRSA role)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN."
  }
}

variable "oidc_issuer" {
  description = "The cluster's OIDC issuer without https:// (oidc.eks.REGION.amazonaws.com/id/ID)."
  type        = string

  validation {
    condition     = !startswith(var.oidc_issuer, "https://")
    error_message = "oidc_issuer must not start with https://."
  }
}

variable "ray_namespace" {
  description = "Kubernetes namespace of the Ray pods."
  type        = string
  default     = "ray"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.ray_namespace))
    error_message = "ray_namespace must be a DNS label."
  }
}

variable "ray_service_account" {
  description = "Kubernetes service account of the Ray pods (annotated with the role ARN)."
  type        = string
  default     = "ray"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", var.ray_service_account))
    error_message = "ray_service_account must be a DNS subdomain name."
  }
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
