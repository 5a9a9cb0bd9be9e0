# Review policy for kvmnet plans, evaluated on `kvmnet plan -json` (or
# `kvmnet show -json PLANFILE`): the same document shape as `terraform show -json`,
# so it runs under OPA / conftest as well as any Rego engine:
#
#   kvmnet plan -out=tonight.plan
#   kvmnet show -json tonight.plan > plan.json
#   opa eval -i plan.json -d examples/policy 'data.kvmnet.policy.deny'
#
# A plan passes when `deny` is empty.
package kvmnet.policy

import rego.v1

# --- what the plan does -------------------------------------------------------

replaced(rc) if {
	"delete" in rc.change.actions
	"create" in rc.change.actions
}

leaves(rc) if rc.change.actions == ["delete"]

writes(rc) if {
	some action in rc.change.actions
	action in {"create", "update"}
}

# NICs the state holds (guests plugged into kvmnet's networks) and stay after the plan
nics_staying contains nic if {
	some nic in input.prior_state.values.root_module.resources
	nic.type == "nic_attachment"
	not removed_by_plan(nic.address)
}

removed_by_plan(address) if {
	some rc in input.resource_changes
	rc.address == address
	leaves(rc)
}

# --- the rules ----------------------------------------------------------------

# Replacing a network takes it away under its guests: refuse while a guest's NIC
# the state manages is plugged into it and stays.
deny contains msg if {
	some rc in input.resource_changes
	rc.type == "network"
	replaced(rc)
	some nic in nics_staying
	nic.values.network == rc.change.before.name
	msg := sprintf("%s would be replaced while %s (guest %s) uses it", [rc.address, nic.address, nic.values.domain])
}

# Forwarding a host port to a guest's SSH exposes it to whoever reaches the host.
deny contains msg if {
	some rc in input.resource_changes
	rc.type == "port_forward"
	writes(rc)
	rc.change.after.to_port == 22
	msg := sprintf("%s forwards host port %v to port 22 of %s", [rc.address, rc.change.after.host_port, rc.change.after.to_address])
}
