variable "project" {
  description = "Project id."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id (6-30 lowercase letters, digits, hyphens)."
  }
}

variable "prefix" {
  description = "Prefix of the service account ids."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 2-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "bucket" {
  description = "Data bucket the job and Ray accounts use."
  type        = string
}

variable "ray_namespace" {
  description = "Kubernetes namespace of the Ray pods (Workload Identity binding)."
  type        = string
  default     = "ray"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.ray_namespace))
    error_message = "ray_namespace must be a DNS label."
  }
}

variable "ray_service_account" {
  description = "Kubernetes service account of the Ray pods."
  type        = string
  default     = "ray"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", var.ray_service_account))
    error_message = "ray_service_account must be a DNS subdomain name."
  }
}

variable "bind_workload_identity" {
  description = "Bind the Ray Kubernetes service account (needs the GKE cluster, hence the workload pool, to exist)."
  type        = bool
  default     = true
}
