# Offline checks of the job definition: `terraform init -backend=false && terraform test`.

variables {
  bucket   = "medreason-test"
  run_name = "r1"
}

run "aws_arguments_and_conf" {
  command = apply

  variables {
    cloud = "aws"
  }

  assert {
    condition = output.paths_job.arguments == [
      "--nodes", "s3://medreason-test/kg/primekg/nodes",
      "--edges", "s3://medreason-test/kg/primekg/edges",
      "--pairs", "s3://medreason-test/runs/r1/reason/pairs",
      "--out", "s3://medreason-test/runs/r1/reason/paths",
      "--max-hops", "3", "--max-paths", "50", "--seed", "0", "--engine", "graphframes",
    ]
    error_message = "aws arguments differ from the contract"
  }

  assert {
    condition     = output.paths_job.entry_point == "s3://medreason-test/code/jobs/kg_paths.py"
    error_message = "wrong entry point"
  }

  assert {
    condition     = output.paths_job.spark_conf["spark.archives"] == "s3://medreason-test/code/medreason_venv.tar.gz#environment"
    error_message = "spark.archives must unpack the venv as ./environment"
  }

  assert {
    condition     = output.paths_job.spark_submit_parameters == "--conf spark.archives=s3://medreason-test/code/medreason_venv.tar.gz#environment --conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=./environment/bin/python --conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python --conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python --conf spark.jars.packages=io.graphframes:graphframes-spark4_2.13:0.10.0 --conf spark.submit.pyFiles=s3://medreason-test/code/medreason_dist.zip"
    error_message = "sparkSubmitParameters must list the conf sorted by key"
  }

  assert {
    condition     = output.ray_entrypoints.generate == "python jobs/generate.py --config conf/aws.yaml --set ray.address=auto" && output.ray_entrypoints.leads == "python jobs/leads.py run --config conf/leads_aws.yaml --set ray.address=auto"
    error_message = "aws Ray entrypoints differ from the contract"
  }

  assert {
    condition     = output.names.batch_id == "medreason-paths-r1" && output.names.job_request_key == "code/emr/medreason-paths-r1.json"
    error_message = "names are not derived from prefix and run name"
  }

  assert {
    condition     = contains(output.attempt_prefixes, "runs/r1/reason/paths/.attempts/")
    error_message = "the path job's attempt prefix must be expired by lifecycle"
  }
}

run "gcp_batch" {
  command = apply

  variables {
    cloud               = "gcp"
    prefix              = "mr"
    max_hops            = 4
    engine              = "dataframe"
    container_image     = "us-docker.pkg.dev/p/medreason/spark:1.0"
    service_account     = "mr-paths-job@p-123.iam.gserviceaccount.com"
    graphframes_package = "io.graphframes:graphframes-spark4_2.13:0.10.1"
  }

  assert {
    condition = output.paths_job.args == [
      "--nodes", "gs://medreason-test/kg/primekg/nodes",
      "--edges", "gs://medreason-test/kg/primekg/edges",
      "--pairs", "gs://medreason-test/runs/r1/reason/pairs",
      "--out", "gs://medreason-test/runs/r1/reason/paths",
      "--max-hops", "4", "--max-paths", "50", "--seed", "0", "--engine", "dataframe",
    ]
    error_message = "gcp args differ from the contract"
  }

  assert {
    condition     = output.paths_job.main_python_file_uri == "gs://medreason-test/code/jobs/kg_paths.py" && output.paths_job.python_file_uris == ["gs://medreason-test/code/medreason_dist.zip"]
    error_message = "wrong Dataproc files"
  }

  assert {
    condition     = output.paths_job.properties == { "spark.jars.packages" = "io.graphframes:graphframes-spark4_2.13:0.10.1" } && output.paths_job.runtime_version == "3.0"
    error_message = "wrong Dataproc runtime config"
  }

  assert {
    condition     = output.paths_job.batch_id == "mr-paths-r1" && output.paths_job.service_account == "mr-paths-job@p-123.iam.gserviceaccount.com"
    error_message = "wrong batch id or service account"
  }

  assert {
    condition     = output.ray_entrypoints.sft == "python jobs/sft.py --config conf/gcp.yaml --set ray.address=auto" && output.ray_entrypoints.leads == "python jobs/leads.py run --config conf/leads_gcp.yaml --set ray.address=auto"
    error_message = "gcp Ray entrypoints differ from the contract"
  }
}

run "rejects_bucket_with_dots" {
  command = plan
  variables {
    cloud  = "aws"
    bucket = "my.bucket"
  }
  expect_failures = [var.bucket]
}

run "rejects_uppercase_bucket" {
  command = plan
  variables {
    cloud  = "aws"
    bucket = "MedReason"
  }
  expect_failures = [var.bucket]
}

run "rejects_reserved_bucket_prefix" {
  command = plan
  variables {
    cloud  = "gcp"
    bucket = "google-data"
    # gcp needs these two; they are valid so only the bucket fails
    container_image = "us-docker.pkg.dev/p/medreason/spark:1.0"
    service_account = "mr-paths-job@p-123.iam.gserviceaccount.com"
  }
  expect_failures = [var.bucket]
}

run "rejects_bad_run_name" {
  command = plan
  variables {
    cloud    = "aws"
    run_name = "Run_1"
  }
  expect_failures = [var.run_name]
}

run "rejects_too_long_batch_id" {
  command = plan
  variables {
    cloud    = "aws"
    run_name = "a-run-name-that-is-far-too-long-for-a-dataproc-batch-id-x"
  }
  expect_failures = [var.run_name]
}

run "rejects_unknown_cloud" {
  command = plan
  variables {
    cloud = "azure"
  }
  expect_failures = [var.cloud]
}

run "rejects_max_hops_out_of_range" {
  command = plan
  variables {
    cloud    = "aws"
    max_hops = 6
  }
  expect_failures = [var.max_hops]
}

run "rejects_unknown_engine" {
  command = plan
  variables {
    cloud  = "aws"
    engine = "bfs"
  }
  expect_failures = [var.engine]
}

run "gcp_needs_image_and_service_account" {
  command = plan
  variables {
    cloud = "gcp"
  }
  expect_failures = [var.container_image, var.service_account]
}
