# The guide's custom NAT network ("自定义 NAT 网络") with a static DHCP host for
# web-server, a second virtio NIC with 4 queues hot-plugged into the running
# web-server ("网卡热插拔"), and the port forward 8080 → web-server:80 ("端口转发").
# `make demo` points it at a real libvirtd confined to a throw-away namespace.

variable "libvirt_uri" {
  type    = string
  default = "qemu:///system"
}

variable "netns" {
  type    = string
  default = ""
}

provider "libvirt" {
  uri = var.libvirt_uri
}

provider "nftables" {
  netns = var.netns == "" ? null : var.netns
}

resource "network" "my_nat" {
  name           = "my-nat"
  mode           = "nat"
  bridge         = "virbr1"
  nat_port_range = [1024, 65535]
  ip {
    address = "10.0.0.1"
    prefix  = 24
    dhcp_range {
      start = "10.0.0.10"
      end   = "10.0.0.100"
    }
    dhcp_host {
      mac  = "52:54:00:12:34:56"
      ip   = "10.0.0.50"
      name = "web-server"
    }
  }
}

resource "nic_attachment" "web_second" {
  domain  = "web-server"
  network = network.my_nat.name
  model   = "virtio"
  queues  = 4
}

resource "port_forward" "web_http" {
  protocol   = "tcp"
  host_port  = 8080
  to_address = "10.0.0.50"
  to_port    = 80
  network    = network.my_nat.name
}
