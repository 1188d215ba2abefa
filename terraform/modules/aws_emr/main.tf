resource "aws_emrserverless_application" "spark" {
  name          = var.name
  release_label = var.release_label
  type          = "spark"

  dynamic "initial_capacity" {
    for_each = var.initial_capacity.driver_count > 0 ? [1] : []
    content {
      initial_capacity_type = "Driver"
      initial_capacity_config {
        worker_count = var.initial_capacity.driver_count
        worker_configuration {
          cpu    = var.initial_capacity.driver_cpu
          memory = var.initial_capacity.driver_memory
          disk   = var.initial_capacity.disk
        }
      }
    }
  }

  dynamic "initial_capacity" {
    for_each = var.initial_capacity.executor_count > 0 ? [1] : []
    content {
      initial_capacity_type = "Executor"
      initial_capacity_config {
        worker_count = var.initial_capacity.executor_count
        worker_configuration {
          cpu    = var.initial_capacity.executor_cpu
          memory = var.initial_capacity.executor_memory
          disk   = var.initial_capacity.disk
        }
      }
    }
  }

  maximum_capacity {
    cpu    = var.maximum_capacity.cpu
    memory = var.maximum_capacity.memory
    disk   = var.maximum_capacity.disk
  }

  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.idle_timeout_minutes
  }

  dynamic "network_configuration" {
    for_each = length(var.subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  tags = var.tags
}

locals {
  # Job runs are not a Terraform resource (each run is an API call), so the module renders the
  # StartJobRun request body; `aws emr-serverless start-job-run --cli-input-json` takes it as is.
  start_job_run = {
    applicationId    = aws_emrserverless_application.spark.id
    executionRoleArn = var.job_role_arn
    name             = var.job_run_name
    jobDriver = {
      sparkSubmit = {
        entryPoint            = var.paths_job.entry_point
        entryPointArguments   = var.paths_job.arguments
        sparkSubmitParameters = var.paths_job.spark_submit_parameters
      }
    }
    configurationOverrides = {
      monitoringConfiguration = {
        s3MonitoringConfiguration = {
          logUri = "s3://${var.bucket}/${var.log_prefix}"
        }
      }
    }
  }
}

resource "aws_s3_object" "start_job_run" {
  bucket                 = var.bucket
  key                    = var.request_key
  content                = jsonencode(local.start_job_run)
  content_type           = "application/json"
  server_side_encryption = "aws:kms"
  kms_key_id             = var.kms_key_arn
  tags                   = var.tags
}
