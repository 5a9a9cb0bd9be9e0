"""The ``sysctl`` provider (``sysctl_profile``); see docs/sysctl.md."""
from kvmnet.providers.sysctl.provider import SysctlProvider

__all__ = ["SysctlProvider"]
