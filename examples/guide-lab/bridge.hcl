# Section 4 "桥接网络配置与管理": the host bridge br0 over the uplink, kept in netplan
# (the guide's /etc/netplan/01-netcfg.yaml edit), and the libvirt network on it.

# Section 4.2 步骤1/2. kvmnet writes its own file, <root>/etc/netplan/90-kvmnet.yaml
# (checked with `netplan generate` first), and makes the change live through
# netlink itself: it never runs `netplan apply`, and never edits 01-netcfg.yaml.
# The uplink loses its own addressing to the bridge, as in the guide (eth0:
# dhcp4 false; br0: dhcp4 true, or a static address).
resource "bridge" "br0" {
  provider   = "netplan"
  name       = "br0"
  interfaces = [var.uplink]
  stp        = false
  dhcp4      = var.uplink_address == ""
  addresses  = var.uplink_address == "" ? [] : [var.uplink_address]
}

# Section 4.3 bridge-network.xml: <forward mode="bridge"/> on the existing br0.
# The reference makes br0 a dependency: created first, destroyed last.
resource "network" "host_bridge" {
  name   = "host-bridge"
  mode   = "bridge"
  bridge = bridge.br0.name
}
