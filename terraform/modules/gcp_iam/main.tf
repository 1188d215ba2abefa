# Three identities, each with only what it uses:
#  job  - runs the Dataproc batch: Dataproc worker on the project, objects in the data bucket;
#  node - GKE nodes: logs, metrics, image pulls; no data access;
#  ray  - the Ray pods through Workload Identity: objects in the data bucket.

resource "google_service_account" "job" {
  project      = var.project
  account_id   = "${var.prefix}-paths-job"
  display_name = "KG path job (Dataproc Serverless)"
}

resource "google_service_account" "node" {
  project      = var.project
  account_id   = "${var.prefix}-gke-node"
  display_name = "GKE nodes of the Ray cluster"
}

resource "google_service_account" "ray" {
  project      = var.project
  account_id   = "${var.prefix}-ray"
  display_name = "Ray pods (Workload Identity)"
}

# Dataproc Serverless requires the batch's account to hold roles/dataproc.worker on the project.
resource "google_project_iam_member" "job_dataproc_worker" {
  project = var.project
  role    = "roles/dataproc.worker"
  member  = google_service_account.job.member
}

# objectUser: read, write, list and delete objects; the runner commits by copy-then-delete.
resource "google_storage_bucket_iam_member" "data_users" {
  for_each = {
    job = google_service_account.job.member
    ray = google_service_account.ray.member
  }
  bucket = var.bucket
  role   = "roles/storage.objectUser"
  member = each.value
}

resource "google_project_iam_member" "node" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
  ])
  project = var.project
  role    = each.value
  member  = google_service_account.node.member
}

resource "google_service_account_iam_member" "ray_workload_identity" {
  count              = var.bind_workload_identity ? 1 : 0
  service_account_id = google_service_account.ray.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project}.svc.id.goog[${var.ray_namespace}/${var.ray_service_account}]"
}
