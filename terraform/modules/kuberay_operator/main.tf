# The operator that turns RayCluster / RayJob objects (cluster/kuberay/) into pods.
resource "helm_release" "kuberay_operator" {
  name             = "kuberay-operator"
  repository       = "https://ray-project.github.io/kuberay-helm/"
  chart            = "kuberay-operator"
  version          = var.chart_version
  namespace        = var.namespace
  create_namespace = true
  atomic           = true
  wait             = true
  timeout          = 600

  set = [for k, v in var.node_selector : { name = "nodeSelector.${replace(k, ".", "\\.")}", value = v }]
}
