"""Fleet mode: many hosts from one repository (docs/fleet.md)."""
