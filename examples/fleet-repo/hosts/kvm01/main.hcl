# Host kvm01: a hypervisor with two NAT labs. Every provider manages a network
# namespace and a sandbox libvirtd (see the repo README); on the real host, set
# netns = "" and libvirt_uri = "qemu:///system".

variable "netns" {
  type    = string
  default = "kvmnet-kvm01"
}

variable "libvirt_uri" {
  type    = string
  default = "qemu+unix:///system?socket=/run/kvmnet-sandbox/kvm01/libvirt-sock"
}

variable "state_dir" {
  type    = string
  default = "/run/kvmnet-sandbox/kvm01/sysctl.d"
}

provider "libvirt" {
  uri = var.libvirt_uri
}

provider "iproute" {
  netns = var.netns
}

provider "nftables" {
  netns = var.netns
}

provider "sysctl" {
  netns       = var.netns
  persist_dir = var.state_dir
}

module "hypervisor" {
  source  = "../../modules/hypervisor"
  uplink  = "eth0"
  address = "192.0.2.11/24"
}

# The first lab was its own module call before the labs became a map: the move
# keeps its network (no replace; the ownership marks follow the new address).
moved {
  from = module.lab
  to   = module.nat["lab"]
}

# The stock network libvirt makes on Debian, adopted as it is.
import {
  to = network.default
  id = "default"
}

resource "network" "default" {
  name   = "default"
  mode   = "nat"
  bridge = "virbr0"
  ip {
    address = "192.168.122.1"
    prefix  = 24
    dhcp_range {
      start = "192.168.122.2"
      end   = "192.168.122.254"
    }
  }
}

module "nat" {
  source   = "../../modules/nat-lab"
  for_each = local.labs
  name     = each.key
  bridge   = each.value.bridge
  subnet   = each.value.subnet
  guests   = each.value.guests
  forwards = each.value.forwards
}

locals {
  labs = {
    lab = {
      bridge   = "virbr10"
      subnet   = "10.10.0.0/24"
      guests   = { web = { mac = "52:54:00:10:00:50", host = 50 } }
      forwards = {
        http = { host_port = 8080, guest = "web", to_port = 80 }
      }
    }
    ci = {
      bridge   = "virbr11"
      subnet   = "10.11.0.0/24"
      guests   = {}
      forwards = {}
    }
  }
}

output "networks" {
  value = concat([module.hypervisor.network], [for k, m in module.nat : m.network])
}
