"""The fault suite uses the session's libvirtd sandbox of tests/real (one fixture
definition, shared)."""
from tests.real.conftest import guest_image, libvirt, libvirt_sandbox  # noqa: F401
