"""Real components for tests: network namespaces, veth pairs, a real libvirtd.

Everything here creates its objects inside namespaces that the test creates and
always deletes; nothing touches the host namespace's links, addresses, firewall or
sysctls.
"""
