# Role "hypervisor": the host bridge over the uplink, the libvirt network that
# guests attach to, and the host's forwarding sysctls.

variable "uplink" {
  type        = string
  description = "The NIC the bridge takes over"
}

variable "bridge_name" {
  type    = string
  default = "br0"
}

variable "address" {
  type        = string
  default     = ""
  description = "The bridge's own address (CIDR); empty: none"
}

variable "mtu" {
  type    = number
  default = 1500
}

resource "bridge" "uplink" {
  name       = var.bridge_name
  interfaces = [var.uplink]
  addresses  = var.address == "" ? [] : [var.address]
  mtu        = var.mtu
  stp        = false
}

resource "network" "host_bridge" {
  name   = "host-${var.bridge_name}"
  mode   = "bridge"
  bridge = bridge.uplink.name
}

resource "sysctl_profile" "forwarding" {
  settings = {
    "net.ipv4.ip_forward"         = 1
    "net.ipv4.conf.all.rp_filter" = 2
  }
}

output "bridge" {
  value = bridge.uplink.name
}

output "network" {
  value = network.host_bridge.name
}
