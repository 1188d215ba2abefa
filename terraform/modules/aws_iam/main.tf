data "aws_caller_identity" "current" {}

locals {
  # Object ARNs and s3:prefix patterns of a prefix list.
  objects = { for k, v in {
    job_read  = var.job_read_prefixes
    job_write = var.job_write_prefixes
    ray_read  = var.ray_read_prefixes
    ray_write = var.ray_write_prefixes
  } : k => { arns = [for p in v : "${var.bucket_arn}/${p}*"], list = [for p in v : "${p}*"] } }
}

# One policy shape for both roles: list only the granted prefixes, read them, write some of them,
# and use the bucket key for exactly those calls.
data "aws_iam_policy_document" "bucket" {
  for_each = {
    job = { read = local.objects.job_read, write = local.objects.job_write }
    ray = { read = local.objects.ray_read, write = local.objects.ray_write }
  }

  statement {
    sid       = "ListGrantedPrefixes"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = concat(each.value.read.list, each.value.write.list, [""])
    }
  }

  statement {
    sid       = "Read"
    actions   = ["s3:GetObject"]
    resources = concat(each.value.read.arns, each.value.write.arns)
  }

  # Delete and multipart actions: the runner commits by copy-then-delete and Spark uploads in parts.
  statement {
    sid       = "Write"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = each.value.write.arns
  }

  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

# --- EMR Serverless job execution role ---------------------------------------------------------

data "aws_iam_policy_document" "emr_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "job" {
  name               = "${var.prefix}-paths-job"
  description        = "EMR Serverless job runs of the KG path job"
  assume_role_policy = data.aws_iam_policy_document.emr_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "job_bucket" {
  name   = "bucket"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.bucket["job"].json
}

# --- Ray pods (IRSA) ---------------------------------------------------------------------------

data "aws_iam_policy_document" "ray_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.ray_namespace}:${var.ray_service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ray" {
  name               = "${var.prefix}-ray"
  description        = "Ray head and worker pods (IRSA) of the LLM and SFT stages"
  assume_role_policy = data.aws_iam_policy_document.ray_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "ray_bucket" {
  name   = "bucket"
  role   = aws_iam_role.ray.id
  policy = data.aws_iam_policy_document.bucket["ray"].json
}
