# Sections 6 "网络接口热插拔" and 8.2 "虚拟网卡性能优化": a second virtio NIC with
# four vhost queues and the guide's offloads switched off, hot-plugged into the running web-server
# (`virsh attach-device web-server new-interface.xml --live --persistent`).
# The domain itself is not managed: it must exist at plan time. Its MAC is the one
# my-nat's static DHCP host binds to 10.0.0.50. Destroy detaches it (live and
# saved) before my-nat goes; the guest is never restarted.
resource "nic_attachment" "web_server_lab" {
  domain  = "web-server"
  network = network.my_nat.name
  mac     = "52:54:00:12:34:56"
  model   = "virtio"

  # 8.2's <driver name='vhost' queues='4'> with its <host .../> and <guest .../> offloads off
  driver {
    name   = "vhost"
    queues = 4
    host {
      csum = false
      gso  = false
      tso4 = false
      tso6 = false
      ecn  = false
      ufo  = false
    }
    guest {
      csum = false
      tso4 = false
      tso6 = false
      ecn  = false
      ufo  = false
    }
  }
}
