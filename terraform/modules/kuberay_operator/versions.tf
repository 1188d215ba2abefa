terraform {
  required_version = ">= 1.9.0"
  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = ">= 3.0.0, < 4.0.0" # 3.x: `set` is a list attribute, not blocks
    }
  }
}
