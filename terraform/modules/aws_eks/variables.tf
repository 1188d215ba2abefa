variable "name" {
  description = "EKS cluster name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,99}$", var.name))
    error_message = "name must start with a letter and hold at most 100 letters, digits or hyphens."
  }
}

variable "region" {
  description = "Region of the cluster (for the kubeconfig command)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region such as us-east-1."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.33."
  }
}

variable "subnet_ids" {
  description = "Private subnets (at least two availability zones) of the control plane and nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids must list at least two subnet ids (subnet-...)."
  }
}

variable "endpoint_public_access" {
  description = "Expose the API server publicly (restricted to public_access_cidrs). Off: reach it from the VPC or a VPN."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to the public API endpoint when it is on."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.public_access_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "public_access_cidrs must be CIDR blocks narrower than 0.0.0.0/0."
  }
}

variable "system_node_group" {
  description = "CPU nodes for the KubeRay operator, Ray head and system pods."
  type = object({
    instance_types = optional(list(string), ["m6i.2xlarge"])
    min_size       = optional(number, 1)
    desired_size   = optional(number, 2)
    max_size       = optional(number, 4)
    disk_size      = optional(number, 100)
  })
  default = {}

  validation {
    condition     = var.system_node_group.min_size >= 1 && var.system_node_group.min_size <= var.system_node_group.desired_size && var.system_node_group.desired_size <= var.system_node_group.max_size
    error_message = "system_node_group needs 1 <= min_size <= desired_size <= max_size."
  }
}

variable "gpu_node_group" {
  description = "GPU nodes for the Ray workers (vLLM replicas, SFT); tainted so only GPU pods land there."
  type = object({
    instance_types = optional(list(string), ["g5.2xlarge"])
    ami_type       = optional(string, "AL2023_x86_64_NVIDIA")
    min_size       = optional(number, 0)
    desired_size   = optional(number, 1)
    max_size       = optional(number, 8)
    disk_size      = optional(number, 200)
    capacity_type  = optional(string, "ON_DEMAND")
  })
  default = {}

  validation {
    condition     = var.gpu_node_group.min_size >= 0 && var.gpu_node_group.min_size <= var.gpu_node_group.desired_size && var.gpu_node_group.desired_size <= var.gpu_node_group.max_size
    error_message = "gpu_node_group needs 0 <= min_size <= desired_size <= max_size."
  }

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.gpu_node_group.capacity_type)
    error_message = "gpu_node_group.capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "log_retention_days" {
  description = "Retention of the control-plane logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value (for example 30, 90, 365)."
  }
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
