# The language features a reviewed repo uses (docs/language.md): variable
# validation, nullable and sensitive values, dynamic blocks, data sources,
# lifecycle conditions, moved / import blocks. `kvmnet validate` checks it in CI;
# tests/real/test_lang_real.py applies it against a libvirtd in a namespace.

variable "libvirt_uri" {
  type    = string
  default = "qemu:///system"
}

variable "lab_prefix" {
  type     = number
  default  = 24
  nullable = false
  validation {
    condition     = var.lab_prefix >= 16 && var.lab_prefix <= 28
    error_message = "lab_prefix must be between 16 and 28, not ${var.lab_prefix}."
  }
}

variable "hosts" {
  type    = map(string)
  default = {
    "10.77.0.10" = "52:54:00:77:00:10"
    "10.77.0.11" = "52:54:00:77:00:11"
  }
  validation {
    condition     = length([for mac in values(var.hosts) : mac if lower(mac) != mac]) == 0
    error_message = "write the DHCP hosts' MACs in lower case."
  }
}

variable "lab_bridge" {
  type      = string
  default   = "kvlab0"
  sensitive = true
}
