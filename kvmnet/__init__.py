"""kvmnet: a plan/state engine for KVM host networking."""
__version__ = "0.1.0"
