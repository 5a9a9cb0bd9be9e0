# Host kvm02: a hypervisor whose guests' libvirtd is reached through a provider
# alias (on a real fleet: uri = "qemu+ssh://kvm02/system"), handed to the module.

variable "netns" {
  type    = string
  default = "kvmnet-kvm02"
}

variable "libvirt_uri" {
  type    = string
  default = "qemu+unix:///system?socket=/run/kvmnet-sandbox/kvm02/libvirt-sock"
}

provider "libvirt" {
  alias = "kvm02"
  uri   = var.libvirt_uri
}

provider "iproute" {
  netns = var.netns
}

provider "nftables" {
  netns = var.netns
}

provider "sysctl" {
  netns       = var.netns
  persist_dir = "/run/kvmnet-sandbox/kvm02/sysctl.d"
}

module "hypervisor" {
  source      = "../../modules/hypervisor"
  uplink      = "eth1"
  bridge_name = "br1"
  mtu         = 9000
  providers   = { libvirt = libvirt.kvm02 }
}

module "nat" {
  source    = "../../modules/nat-lab"
  count     = 2
  name      = "lab${count.index}"
  bridge    = "virbr2${count.index}"
  subnet    = cidrsubnet("10.20.0.0/16", 8, count.index)
  providers = { libvirt = libvirt.kvm02 }
}

output "gateways" {
  value = module.nat[*].gateway
}
