provider "libvirt" {
  uri = "test:///default"
}

resource "network" "lab" {
  name           = "lab"
  mode           = "nat"
  bridge         = "virbr7"
  mtu            = 9000
  domain         = "lab.test"
  nat_port_range = [2000, 3000]
  ip {
    address = "10.77.0.1"
    netmask = "255.255.255.0"
    dhcp_range {
      start = "10.77.0.100"
      end   = "10.77.0.200"
    }
    dhcp_host {
      mac  = "52:54:00:AA:00:01"
      ip   = "10.77.0.10"
      name = "web"
    }
  }
}

resource "network" "iso" {
  mode = "isolated"
  ip {
    address = "10.78.0.1"
    prefix  = 24
  }
}
