variable "project" {
  description = "Project id."
  type        = string
}

variable "name" {
  description = "GKE cluster name."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$", var.name))
    error_message = "name must be 1-40 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "location" {
  description = "Zone or region of the cluster; a zone where the GPU type exists keeps GPU quota simple."
  type        = string
}

variable "network" {
  description = "VPC network self link or name."
  type        = string
}

variable "subnetwork" {
  description = "Subnetwork with secondary ranges for pods and services."
  type        = string
}

variable "pods_range_name" {
  description = "Secondary range name of the pods."
  type        = string
  default     = "pods"
}

variable "services_range_name" {
  description = "Secondary range name of the services."
  type        = string
  default     = "services"
}

variable "master_ipv4_cidr_block" {
  description = "/28 of the private control plane."
  type        = string
  default     = "172.16.0.0/28"

  validation {
    condition     = can(cidrhost(var.master_ipv4_cidr_block, 0)) && endswith(var.master_ipv4_cidr_block, "/28")
    error_message = "master_ipv4_cidr_block must be a /28."
  }
}

variable "master_authorized_cidrs" {
  description = "CIDRs allowed to the API server (a VPN or bastion range)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.master_authorized_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "master_authorized_cidrs must be CIDR blocks narrower than 0.0.0.0/0."
  }
}

variable "node_service_account" {
  description = "E-mail of the nodes' service account."
  type        = string
}

variable "system_pool" {
  description = "CPU pool for the KubeRay operator, the Ray head and system pods."
  type = object({
    machine_type = optional(string, "e2-standard-8")
    min_count    = optional(number, 1)
    max_count    = optional(number, 4)
    disk_size_gb = optional(number, 100)
  })
  default = {}

  validation {
    condition     = var.system_pool.min_count >= 1 && var.system_pool.min_count <= var.system_pool.max_count
    error_message = "system_pool needs 1 <= min_count <= max_count."
  }
}

variable "gpu_pool" {
  description = "GPU pool for the Ray workers (vLLM replicas, SFT)."
  type = object({
    machine_type     = optional(string, "g2-standard-8")
    accelerator_type = optional(string, "nvidia-l4")
    accelerators     = optional(number, 1)
    min_count        = optional(number, 0)
    max_count        = optional(number, 8)
    disk_size_gb     = optional(number, 200)
    spot             = optional(bool, false)
  })
  default = {}

  validation {
    condition     = var.gpu_pool.min_count >= 0 && var.gpu_pool.min_count <= var.gpu_pool.max_count && var.gpu_pool.accelerators >= 1
    error_message = "gpu_pool needs 0 <= min_count <= max_count and at least one accelerator."
  }
}

variable "labels" {
  description = "Labels of the cluster and nodes."
  type        = map(string)
  default     = {}
}
