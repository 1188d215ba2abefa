variable "project" {
  description = "GCP project id."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id (6-30 lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the bucket, the Dataproc batch and the cluster."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as us-central1."
  }
}

variable "gke_location" {
  description = "Zone (or region) of the GKE cluster; pick one where the GPU type is offered."
  type        = string
}

variable "bucket" {
  description = "Data bucket name (validated by job_spec)."
  type        = string
}

variable "run_name" {
  description = "Run whose path job is defined (validated by job_spec)."
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

variable "spark_container_image" {
  description = "Custom container of the Dataproc batch (holds the job's Python dependencies)."
  type        = string
}

variable "create_paths_batch" {
  description = "Start the path job's Dataproc batch on apply (after code/ and kg/ are uploaded)."
  type        = bool
  default     = false
}

variable "network" {
  description = "VPC network of GKE and Dataproc."
  type        = string
}

variable "subnetwork" {
  description = "Subnetwork (Private Google Access, Cloud NAT, secondary ranges \"pods\" and \"services\")."
  type        = string
}

variable "master_authorized_cidrs" {
  description = "CIDRs allowed to the private GKE API server."
  type        = list(string)
  default     = []
}

variable "gpu_pool" {
  description = "GPU pool settings (see modules/gcp_gke)."
  type        = any
  default     = {}
}

variable "kuberay_chart_version" {
  description = "kuberay-operator chart version."
  type        = string
  default     = "1.4.2"
}
