# Section 7 "VLAN配置与隔离": the department VLANs 100 (财务部), 200 (技术部),
# 300 (市场部).
#
# The guide's vlan-100.xml cannot work as written, for two reasons:
# - `<vlan tag='100'/>` on a `<forward mode='bridge'/>` network over a plain Linux
#   bridge is rejected by libvirt ("type doesn't support vlan configuration"): only
#   Open vSwitch networks (<virtualport type='openvswitch'/>) take VLAN tags, and a
#   bridge-mode network carries no <ip>/<dhcp> either (libvirt runs no dnsmasq for
#   it). kvmnet refuses `vlan_tag` without `virtualport = "openvswitch"` and `ip` in
#   bridge mode, with a message naming the pattern below.
# - its table gives 市场部 `10.300.1.0/24` (and 管理 `10.999.1.0/24`): 300 and 999
#   are not octets, so there is no such subnet; kvmnet's validation rejects it.
#
# The pattern that works on Linux bridges: an 802.1Q interface on the trunk
# (br0.100, the name the guide's own tcpdump/ip commands use) -> a bridge enslaving
# it -> a bridge-mode libvirt network on that bridge, which guests attach to with
# <source network='vlan-100'/>. The host's own address on each VLAN goes on its
# bridge, computed rather than spelled out: VLAN n gets the n-th /24 of
# 10.128.0.0/9 (100 -> 10.128.100.0/24, 200 -> 10.128.200.0/24,
# 300 -> 10.129.44.0/24), so every id 1..4094 has a valid subnet.
#
# enable_vlans = false switches the whole section off on a kernel without 802.1Q.

locals {
  departments = var.enable_vlans ? {
    finance   = 100
    tech      = 200
    marketing = 300
  } : {}
  vlan_supernet = "10.128.0.0/9"
}

resource "vlan" "dept" {
  for_each = local.departments
  provider = "netplan"
  id       = each.value
  link     = bridge.br0.name
  name     = "br0.${each.value}"
}

resource "bridge" "dept" {
  for_each   = local.departments
  provider   = "netplan"
  name       = "br-vlan${each.value}"
  interfaces = [vlan.dept[each.key].name]
  stp        = false
  addresses  = [format("%s/24", cidrhost(cidrsubnet(local.vlan_supernet, 15, each.value), 1))]
}

resource "network" "dept" {
  for_each = local.departments
  name     = "vlan-${each.value}"
  mode     = "bridge"
  bridge   = bridge.dept[each.key].name
}
