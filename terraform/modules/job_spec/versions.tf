# Provider-free on purpose: `terraform init -backend=false` works offline, so `terraform test` and
# the pytest suite can check the exact job definition without a cloud account.
terraform {
  required_version = ">= 1.9.0" # validation blocks that read other variables need 1.9
}
