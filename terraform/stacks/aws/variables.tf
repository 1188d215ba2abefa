variable "region" {
  description = "AWS region of every resource."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region such as us-east-1."
  }
}

variable "bucket" {
  description = "Data bucket name (validated by job_spec)."
  type        = string
}

variable "run_name" {
  description = "Run whose path job is rendered (validated by job_spec)."
  type        = string
}

variable "prefix" {
  description = "Prefix of resource names."
  type        = string
  default     = "medreason"
}

variable "max_hops" {
  description = "Path job --max-hops."
  type        = number
  default     = 3
}

variable "max_paths" {
  description = "Path job --max-paths."
  type        = number
  default     = 50
}

variable "seed" {
  description = "Path job --seed."
  type        = number
  default     = 0
}

variable "engine" {
  description = "Path job --engine."
  type        = string
  default     = "graphframes"
}

variable "graphframes_package" {
  description = "spark.jars.packages coordinate."
  type        = string
  default     = "io.graphframes:graphframes-spark4_2.13:0.10.0"
}

variable "emr_initial_capacity" {
  description = "Warm EMR Serverless workers (see modules/aws_emr)."
  type        = any
  default     = { driver_count = 0, executor_count = 0 }
}

variable "emr_maximum_capacity" {
  description = "Upper bound of the EMR Serverless application."
  type        = any
  default     = { cpu = "200 vCPU", memory = "800 GB" }
}

variable "subnet_ids" {
  description = "Private subnets (two or more AZs, with a NAT route) of EKS and the EMR jobs."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids needs at least two subnets in different availability zones."
  }
}

variable "emr_security_group_ids" {
  description = "Security groups of the EMR jobs (outbound HTTPS)."
  type        = list(string)
  default     = []
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "endpoint_public_access" {
  description = "Public EKS API endpoint (limited to public_access_cidrs)."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to a public EKS endpoint."
  type        = list(string)
  default     = []
}

variable "gpu_node_group" {
  description = "GPU node group settings (see modules/aws_eks)."
  type        = any
  default     = {}
}

variable "kuberay_chart_version" {
  description = "kuberay-operator chart version."
  type        = string
  default     = "1.4.2"
}
