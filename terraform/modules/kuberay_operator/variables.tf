variable "chart_version" {
  description = "Version of the kuberay-operator chart (the KubeRay release)."
  type        = string
  default     = "1.4.2"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.]+)?$", var.chart_version))
    error_message = "chart_version must be a semantic version such as 1.4.2."
  }
}

variable "namespace" {
  description = "Namespace of the operator."
  type        = string
  default     = "kuberay-system"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS label."
  }
}

variable "node_selector" {
  description = "Node labels the operator pod must run on (the CPU system pool)."
  type        = map(string)
  default     = {}
}
