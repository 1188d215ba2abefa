module "spec" {
  source              = "../../modules/job_spec"
  cloud               = "aws"
  bucket              = var.bucket
  run_name            = var.run_name
  prefix              = var.prefix
  max_hops            = var.max_hops
  max_paths           = var.max_paths
  seed                = var.seed
  engine              = var.engine
  graphframes_package = var.graphframes_package
}

module "storage" {
  source           = "../../modules/aws_storage"
  bucket           = var.bucket
  attempt_prefixes = module.spec.attempt_prefixes
}

module "eks" {
  source                 = "../../modules/aws_eks"
  name                   = module.spec.names.ray_cluster
  region                 = var.region
  kubernetes_version     = var.kubernetes_version
  subnet_ids             = var.subnet_ids
  endpoint_public_access = var.endpoint_public_access
  public_access_cidrs    = var.public_access_cidrs
  gpu_node_group         = var.gpu_node_group
}

module "iam" {
  source            = "../../modules/aws_iam"
  prefix            = var.prefix
  bucket_arn        = module.storage.bucket_arn
  kms_key_arn       = module.storage.kms_key_arn
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
}

module "emr" {
  source             = "../../modules/aws_emr"
  name               = module.spec.names.spark_app
  initial_capacity   = var.emr_initial_capacity
  maximum_capacity   = var.emr_maximum_capacity
  subnet_ids         = var.subnet_ids
  security_group_ids = var.emr_security_group_ids
  bucket             = module.storage.bucket
  kms_key_arn        = module.storage.kms_key_arn
  job_role_arn       = module.iam.job_role_arn
  paths_job          = module.spec.paths_job
  job_run_name       = module.spec.names.job_run_name
  request_key        = module.spec.names.job_request_key
  log_prefix         = module.spec.names.emr_log_prefix
}

module "kuberay" {
  source        = "../../modules/kuberay_operator"
  chart_version = var.kuberay_chart_version
  namespace     = module.spec.names.kuberay_namespace
  node_selector = { "medreason/pool" = "system" }
  depends_on    = [module.eks]
}
