module "spec" {
  source              = "../../modules/job_spec"
  cloud               = "gcp"
  bucket              = var.bucket
  run_name            = var.run_name
  prefix              = var.prefix
  max_hops            = var.max_hops
  max_paths           = var.max_paths
  seed                = var.seed
  engine              = var.engine
  graphframes_package = var.graphframes_package
  container_image     = var.spark_container_image
  service_account     = module.iam.job_service_account
}

module "storage" {
  source           = "../../modules/gcp_storage"
  bucket           = var.bucket
  location         = var.region
  attempt_prefixes = module.spec.attempt_prefixes
}

module "iam" {
  source  = "../../modules/gcp_iam"
  project = var.project
  prefix  = var.prefix
  bucket  = module.storage.bucket
}

module "dataproc" {
  source         = "../../modules/gcp_dataproc"
  project        = var.project
  region         = var.region
  create_batch   = var.create_paths_batch
  paths_job      = module.spec.paths_job
  subnetwork_uri = var.subnetwork
  depends_on     = [module.iam]
}

module "gke" {
  source                  = "../../modules/gcp_gke"
  project                 = var.project
  name                    = module.spec.names.ray_cluster
  location                = var.gke_location
  network                 = var.network
  subnetwork              = var.subnetwork
  master_authorized_cidrs = var.master_authorized_cidrs
  node_service_account    = module.iam.node_service_account
  gpu_pool                = var.gpu_pool
}

module "kuberay" {
  source        = "../../modules/kuberay_operator"
  chart_version = var.kuberay_chart_version
  namespace     = module.spec.names.kuberay_namespace
  node_selector = { "medreason-pool" = "system" }
  depends_on    = [module.gke]
}
