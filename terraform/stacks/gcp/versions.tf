terraform {
  required_version = ">= 1.9.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0.0, < 8.0.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = ">= 3.0.0, < 4.0.0"
    }
  }
}

# Credentials come from Application Default Credentials (gcloud auth application-default login).
provider "google" {
  project = var.project
  region  = var.region
}

# The operator is installed with the caller's gcloud identity via gke-gcloud-auth-plugin; the
# control plane is private, so run apply from a host inside master_authorized_cidrs.
provider "helm" {
  kubernetes = {
    host                   = "https://${module.gke.endpoint}"
    cluster_ca_certificate = base64decode(module.gke.ca_certificate)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "gke-gcloud-auth-plugin"
    }
  }
}
