# Sections 2 and 3 of the guide: the default NAT network and a custom NAT network
# with a static DHCP host, plus the port forwards of section 3.3.

# Section 2.2 "默认网络配置解析": libvirt's stock network. It already exists on every
# KVM host, so it is imported, never recreated:
#   kvmnet import network.default default
resource "network" "default" {
  name   = "default"
  mode   = "nat"
  bridge = "virbr0"
  ip {
    address = "192.168.122.1"
    netmask = "255.255.255.0"
    dhcp_range {
      start = "192.168.122.2"
      end   = "192.168.122.254"
    }
  }
}

# Section 3.2 "创建自定义NAT网络" (nat-network.xml + virsh net-define/net-start/
# net-autostart): one resource; autostart defaults to true.
locals {
  my_nat_subnet = "10.0.0.0/24"
  web_server_ip = cidrhost(local.my_nat_subnet, 50)
}

resource "network" "my_nat" {
  name           = "my-nat"
  mode           = "nat"
  bridge         = "virbr1"
  nat_port_range = [1024, 65535]
  ip {
    address = cidrhost(local.my_nat_subnet, 1)
    prefix  = 24
    dhcp_range {
      start = cidrhost(local.my_nat_subnet, 10)
      end   = cidrhost(local.my_nat_subnet, 100)
    }
    # 静态IP绑定: web-server always gets 10.0.0.50
    dhcp_host {
      mac  = "52:54:00:12:34:56"
      ip   = local.web_server_ip
      name = "web-server"
    }
  }
}

# Section 3.3 "端口转发配置" and its table "常用端口转发场景": the guide's
# `iptables -t nat -A PREROUTING ... -j DNAT` lines. kvmnet also adds what lets the
# forwarded connection past libvirt's own reject rules (docs/port-forwards.md), and
# `iptables-save > /etc/iptables/rules.v4` is replaced by the state + `kvmnet apply`.
locals {
  forwards = {
    web   = { host_port = 8080, to_port = 80 }     # Web服务
    ssh   = { host_port = 2222, to_port = 22 }     # SSH远程
    mysql = { host_port = 3307, to_port = 3306 }   # 数据库
    smtp  = { host_port = 2525, to_port = 25 }     # 邮件服务
  }
}

resource "port_forward" "web_server" {
  for_each   = local.forwards
  protocol   = "tcp"
  host_port  = each.value.host_port
  to_address = local.web_server_ip
  to_port    = each.value.to_port
  network    = network.my_nat.name
}
