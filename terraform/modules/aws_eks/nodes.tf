data "aws_iam_policy_document" "node_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# Nodes get only what kubelet, the VPC CNI and image pulls need; bucket access is the Ray pods'
# IRSA role, not the node's.
resource "aws_iam_role" "node" {
  name               = "${var.name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each   = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"])
  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

resource "aws_eks_node_group" "system" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "system"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  instance_types  = var.system_node_group.instance_types
  ami_type        = "AL2023_x86_64_STANDARD"
  disk_size       = var.system_node_group.disk_size

  scaling_config {
    min_size     = var.system_node_group.min_size
    desired_size = var.system_node_group.desired_size
    max_size     = var.system_node_group.max_size
  }

  labels = { "medreason/pool" = "system" }
  tags   = var.tags

  depends_on = [aws_iam_role_policy_attachment.node]

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size] # an autoscaler owns it after creation
  }
}

resource "aws_eks_node_group" "gpu" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "gpu"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  instance_types  = var.gpu_node_group.instance_types
  ami_type        = var.gpu_node_group.ami_type # the NVIDIA AMI ships the driver and device plugin prerequisites
  capacity_type   = var.gpu_node_group.capacity_type
  disk_size       = var.gpu_node_group.disk_size

  scaling_config {
    min_size     = var.gpu_node_group.min_size
    desired_size = var.gpu_node_group.desired_size
    max_size     = var.gpu_node_group.max_size
  }

  labels = { "medreason/pool" = "gpu" }

  # Keeps CPU-only pods off the expensive nodes; Ray GPU workers tolerate it.
  taint {
    key    = "nvidia.com/gpu"
    value  = "present"
    effect = "NO_SCHEDULE"
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy_attachment.node]

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }
}
