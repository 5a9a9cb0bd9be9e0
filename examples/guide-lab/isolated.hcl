# Section 5.2 "创建不同类型的虚拟网络" and 5.4 "批量网络管理".

# isolated-network.xml: no <forward>, guests talk only to each other and the host.
resource "network" "isolated" {
  name   = "isolated"
  mode   = "isolated"
  bridge = "virbr2"
  ip {
    address = "172.16.0.1"
    prefix  = 24
    dhcp_range {
      start = "172.16.0.10"
      end   = "172.16.0.100"
    }
  }
}

# host-only-network.xml: the guide calls it "仅主机网络" but gives it
# <forward mode='route'/>, which is a routed network (guests reachable from the
# host's other networks, no NAT). kvmnet says what it is: mode = "route".
resource "network" "host_only" {
  name   = "host-only"
  mode   = "route"
  bridge = "virbr3"
  ip {
    address = "192.168.100.1"
    prefix  = 24
    dhcp_range {
      start = "192.168.100.2"
      end   = "192.168.100.50"
    }
  }
}

# create-test-networks.sh: `for i in {10..15}; do create_test_network $i $((100 + i))`
# becomes count; each network is still planned, diffed and destroyed on its own.
resource "network" "test_net" {
  count  = 6
  name   = "test-net-${count.index + 10}"
  mode   = "nat"
  bridge = "virbr${count.index + 10}"
  ip {
    address = "192.168.${count.index + 110}.1"
    prefix  = 24
    dhcp_range {
      start = "192.168.${count.index + 110}.10"
      end   = "192.168.${count.index + 110}.100"
    }
  }
}
