locals {
  scheme = var.cloud == "aws" ? "s3" : "gs"
  root   = "${local.scheme}://${var.bucket}"

  # Bucket layout shared by both clouds (see docs/deploy.md).
  uris = {
    entry_point  = "${local.root}/code/jobs/kg_paths.py"
    package_zip  = "${local.root}/code/medreason_dist.zip"
    venv_archive = "${local.root}/code/medreason_venv.tar.gz"
    kg_dir       = "${local.root}/kg/primekg"
    nodes        = "${local.root}/kg/primekg/nodes"
    edges        = "${local.root}/kg/primekg/edges"
    run_out      = "${local.root}/runs/${var.run_name}"
    pairs        = "${local.root}/runs/${var.run_name}/reason/pairs"
    paths        = "${local.root}/runs/${var.run_name}/reason/paths"
    logs         = "${local.root}/logs/"
  }

  batch_id = "${var.prefix}-paths-${var.run_name}"

  names = {
    bucket            = var.bucket
    run_name          = var.run_name
    batch_id          = local.batch_id
    job_run_name      = local.batch_id
    spark_app         = "${var.prefix}-spark"
    ray_cluster       = "${var.prefix}-ray"
    job_role          = "${var.prefix}-paths-job"
    ray_role          = "${var.prefix}-ray"
    job_request_key   = "code/emr/${local.batch_id}.json"
    log_bucket        = "${var.bucket}-logs"
    emr_log_prefix    = "logs/emr/"
    kuberay_namespace = "kuberay-system"
  }

  # jobs/kg_paths.py's arguments, in the order the contract fixes; all strings.
  arguments = [
    "--nodes", local.uris.nodes,
    "--edges", local.uris.edges,
    "--pairs", local.uris.pairs,
    "--out", local.uris.paths,
    "--max-hops", tostring(var.max_hops),
    "--max-paths", tostring(var.max_paths),
    "--seed", tostring(var.seed),
    "--engine", var.engine,
  ]

  # EMR Serverless: the venv-pack archive becomes ./environment on driver and executors.
  spark_conf = {
    "spark.archives"                                       = "${local.uris.venv_archive}#environment"
    "spark.submit.pyFiles"                                 = local.uris.package_zip
    "spark.jars.packages"                                  = var.graphframes_package
    "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON" = "./environment/bin/python"
    "spark.emr-serverless.driverEnv.PYSPARK_PYTHON"        = "./environment/bin/python"
    "spark.executorEnv.PYSPARK_PYTHON"                     = "./environment/bin/python"
  }
  # sort() orders by bytes, as Python's sorted() does for these ASCII keys.
  spark_submit_parameters = join(" ", [for k in sort(keys(local.spark_conf)) : "--conf ${k}=${local.spark_conf[k]}"])

  aws_job = {
    entry_point             = local.uris.entry_point
    arguments               = local.arguments
    spark_conf              = local.spark_conf
    spark_submit_parameters = local.spark_submit_parameters
  }

  gcp_job = {
    main_python_file_uri = local.uris.entry_point
    args                 = local.arguments
    python_file_uris     = [local.uris.package_zip]
    properties           = { "spark.jars.packages" = var.graphframes_package }
    runtime_version      = var.dataproc_runtime_version
    container_image      = var.container_image
    service_account      = var.service_account
    batch_id             = local.batch_id
  }

  # The two shapes differ, so pick by key rather than with a conditional (which needs one type).
  paths_job = { aws = local.aws_job, gcp = local.gcp_job }[var.cloud]

  # Ray jobs run from the image's checkout (working_dir /app); the config names the cloud.
  ray_conf       = "conf/${var.cloud}.yaml"
  ray_leads_conf = "conf/leads_${var.cloud}.yaml"
  ray_entrypoints = {
    generate = "python jobs/generate.py --config ${local.ray_conf} --set ray.address=auto"
    sft      = "python jobs/sft.py --config ${local.ray_conf} --set ray.address=auto"
    eval     = "python jobs/eval.py --config ${local.ray_conf} --set ray.address=auto"
    leads    = "python jobs/leads.py run --config ${local.ray_leads_conf} --set ray.address=auto"
  }

  # Bucket-relative prefixes where the runner leaves write attempts of this run's path job and of
  # the KG it reads (storage.py: <dataset>/.attempts/<id>/). Lifecycle rules match key prefixes
  # only, never a "/.attempts/" in the middle of a key, so each dataset is listed.
  attempt_datasets = concat(
    ["kg/primekg/nodes", "kg/primekg/edges"],
    [for d in ["reason/pairs", "reason/paths", "reason/paths_pair_status"] : "runs/${var.run_name}/${d}"],
  )
  attempt_prefixes = [for d in local.attempt_datasets : "${d}/.attempts/"]
}

# Records the definition in state, so `terraform apply` of this module alone (no provider) shows
# exactly what the clouds will be given.
resource "terraform_data" "paths_job" {
  input = {
    cloud           = var.cloud
    paths_job       = local.paths_job
    ray_entrypoints = local.ray_entrypoints
  }
}

# Values with a space would split into two spark-submit words inside sparkSubmitParameters.
check "spark_conf_has_no_spaces" {
  assert {
    condition     = alltrue([for k, v in local.spark_conf : !can(regex("\\s", "${k}=${v}"))])
    error_message = "A Spark conf key or value contains whitespace; sparkSubmitParameters would split it."
  }
}

check "batch_id_shape" {
  assert {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,61}[a-z0-9]$", local.batch_id))
    error_message = "The Dataproc batch id ${local.batch_id} is not 4-63 characters of [a-z0-9-]."
  }
}
