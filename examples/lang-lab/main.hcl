provider "libvirt" {
  uri = var.libvirt_uri
}

# the stock network, adopted as it is
import {
  to = network.default
  id = "default"
}

data "network" "default" {
  name = "default"
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

# was network.lab_old before the rename
moved {
  from = network.lab_old
  to   = network.lab
}

resource "network" "lab" {
  name   = "lang-lab"
  mode   = "nat"
  bridge = var.lab_bridge
  ip {
    address = "10.77.0.1"
    prefix  = var.lab_prefix
    dynamic "dhcp_host" {
      for_each = var.hosts
      iterator = host
      content {
        ip  = host.key
        mac = host.value
      }
    }
  }
  lifecycle {
    precondition {
      condition     = data.network.default.active
      error_message = "the default network must be running: the lab's guests use it too."
    }
    postcondition {
      condition     = self.active
      error_message = "the lab network did not start."
    }
  }
}

output "default_bridge" {
  value = data.network.default.bridge
}
