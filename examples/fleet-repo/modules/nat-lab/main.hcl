# Role "nat-lab": a NAT network with static DHCP hosts, and port forwards from the
# host to its guests.

variable "name" {
  type = string
}

variable "bridge" {
  type        = string
  description = "The bridge libvirt makes for the network (virbrN)"
  validation {
    condition     = length(var.bridge) <= 15
    error_message = "an interface name has at most 15 characters: ${var.bridge}."
  }
}

variable "subnet" {
  type        = string
  description = "IPv4 subnet of the network, e.g. 10.10.0.0/24"
}

variable "guests" {
  type        = map(any)
  default     = {}
  description = "Static DHCP hosts: name -> MAC and host number in the subnet"
}

variable "forwards" {
  type        = map(any)
  default     = {}
  description = "Port forwards: name -> host port, guest name, guest port"
}

resource "network" "this" {
  name   = var.name
  mode   = "nat"
  bridge = var.bridge
  ip {
    address = cidrhost(var.subnet, 1)
    netmask = cidrnetmask(var.subnet)
    dhcp_range {
      start = cidrhost(var.subnet, 100)
      end   = cidrhost(var.subnet, 200)
    }
    dynamic "dhcp_host" {
      for_each = var.guests
      iterator = guest
      content {
        name = guest.key
        mac  = guest.value.mac
        ip   = cidrhost(var.subnet, guest.value.host)
      }
    }
  }
}

resource "port_forward" "to_guest" {
  for_each   = var.forwards
  protocol   = "tcp"
  host_port  = each.value.host_port
  to_address = cidrhost(var.subnet, var.guests[each.value.guest].host)
  to_port    = each.value.to_port
  network    = network.this.name
}

output "network" {
  value = network.this.name
}

output "gateway" {
  value = cidrhost(var.subnet, 1)
}
