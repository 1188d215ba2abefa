locals {
  oauth_scopes = ["https://www.googleapis.com/auth/cloud-platform"] # access is decided by IAM roles, not scopes
}

resource "google_container_node_pool" "system" {
  project  = var.project
  name     = "system"
  cluster  = google_container_cluster.this.id
  location = var.location

  autoscaling {
    min_node_count = var.system_pool.min_count
    max_node_count = var.system_pool.max_count
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.system_pool.machine_type
    disk_size_gb    = var.system_pool.disk_size_gb
    image_type      = "COS_CONTAINERD"
    service_account = var.node_service_account
    oauth_scopes    = local.oauth_scopes
    labels          = merge(var.labels, { "medreason-pool" = "system" })

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }
}

resource "google_container_node_pool" "gpu" {
  project  = var.project
  name     = "gpu"
  cluster  = google_container_cluster.this.id
  location = var.location

  autoscaling {
    min_node_count = var.gpu_pool.min_count
    max_node_count = var.gpu_pool.max_count
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.gpu_pool.machine_type
    disk_size_gb    = var.gpu_pool.disk_size_gb
    image_type      = "COS_CONTAINERD"
    spot            = var.gpu_pool.spot
    service_account = var.node_service_account
    oauth_scopes    = local.oauth_scopes
    labels          = merge(var.labels, { "medreason-pool" = "gpu" })

    guest_accelerator {
      type  = var.gpu_pool.accelerator_type
      count = var.gpu_pool.accelerators
      # GKE installs the driver, so no driver DaemonSet has to be managed here.
      gpu_driver_installation_config {
        gpu_driver_version = "LATEST"
      }
    }

    # GKE taints GPU nodes with nvidia.com/gpu itself; Ray GPU workers tolerate it.

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }
}
