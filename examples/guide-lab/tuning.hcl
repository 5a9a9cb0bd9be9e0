# Section 8.4 "内核参数优化": the guide's lines appended to /etc/sysctl.conf and
# `sysctl -p`, as one profile. kvmnet writes <sysctl_dir>/90-kvmnet-tuning.conf,
# remembers each key's value from before, and puts it back on destroy.
# ip_forward is what every NAT/routed network above needs (libvirt sets it too).
locals {
  per_namespace_tuning = {
    "net.ipv4.ip_forward"         = 1
    "net.ipv4.tcp_rmem"           = "4096 65536 16777216"
    "net.ipv4.tcp_wmem"           = "4096 65536 16777216"
    "net.ipv4.tcp_window_scaling" = 1
  }
  # host-wide: cannot be written inside a network namespace (the sandbox)
  host_wide_tuning = var.enable_host_wide_sysctls ? {
    "net.core.rmem_max" = 16777216
    "net.core.wmem_max" = 16777216
  } : {}
}

resource "sysctl_profile" "tuning" {
  settings = merge(local.per_namespace_tuning, local.host_wide_tuning)
}
