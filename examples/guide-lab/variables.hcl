# Settings that differ between a real KVM host and the sandbox `make demo` builds.
# On a real host the defaults manage the host itself; the demo and the test point
# every provider at a throw-away network namespace and a sandboxed libvirtd.

variable "libvirt_uri" {
  type        = string
  default     = "qemu:///system"
  description = "libvirt connection (any URI, e.g. qemu+ssh://kvm02/system)"
}

variable "netns" {
  type        = string
  default     = ""
  description = "Network namespace the host-level providers manage instead of the host's (empty: the host)"
}

variable "uplink" {
  type        = string
  default     = "eth0"
  description = "The physical NIC that br0 takes over (guide section 4.2: eth0)"
}

variable "uplink_address" {
  type        = string
  default     = ""
  description = "Static address of br0 (CIDR); empty: br0 uses DHCP, as in the guide"
}

variable "netplan_root" {
  type        = string
  default     = "/"
  description = "netplan root_dir: the file goes to <root>/etc/netplan/90-kvmnet.yaml"
}

variable "sysctl_dir" {
  type        = string
  default     = "/etc/sysctl.d"
  description = "Where the sysctl profile is persisted"
}

variable "enable_vlans" {
  type        = bool
  default     = true
  description = "The department VLANs (section 7); needs a kernel with 802.1Q"
}

variable "enable_host_wide_sysctls" {
  type        = bool
  default     = true
  description = "net.core.rmem_max/wmem_max (section 8.4); host-wide, not writable inside a network namespace"
}

locals {
  # null = the provider's default (the host's own namespace)
  netns = var.netns == "" ? null : var.netns
}

provider "libvirt" {
  uri = var.libvirt_uri
}

provider "netplan" {
  netns    = local.netns
  root_dir = var.netplan_root
}

provider "nftables" {
  netns = local.netns
}

provider "sysctl" {
  netns       = local.netns
  persist_dir = var.sysctl_dir
}
