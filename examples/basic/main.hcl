# A small kvmnet configuration: a host bridge and the sysctl tuning that a KVM host
# needs (the guide's "网络优化" section). `make demo` runs it inside a throw-away
# network namespace; on a real host, leave `netns` empty.

variable "netns" {
  type        = string
  default     = ""
  description = "Network namespace to manage instead of the host's (empty: the host)"
}

variable "persist_dir" {
  type    = string
  default = "/etc/sysctl.d"
}

provider "sysctl" {
  netns       = var.netns == "" ? null : var.netns
  persist_dir = var.persist_dir
}

# Routing between guests and the outside needs forwarding; the rest is the guide's
# buffer tuning that is per network namespace.
resource "sysctl_profile" "kvm_host" {
  settings = {
    "net.ipv4.ip_forward"         = 1
    "net.ipv4.conf.all.rp_filter" = 2
    "net.core.somaxconn"          = 1024
    "net.ipv4.tcp_rmem"           = "4096 87380 16777216"
  }
}
