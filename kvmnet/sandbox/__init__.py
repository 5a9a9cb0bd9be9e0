"""Throw-away real environments for tests and `make demo`.

Network namespaces with veth pairs, a real libvirtd confined to a namespace with
private mounts, and a small real guest under TCG. Everything is created inside
namespaces this code makes and is always torn down; the host's own networking is
never touched.
"""
