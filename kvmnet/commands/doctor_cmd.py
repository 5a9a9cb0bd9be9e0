"""kvmnet doctor [--json]: check, bottom up, that what kvmnet manages works live.

What is checked comes from the state (every managed instance) and the config
(the provider blocks: libvirt's URI, the ``netns`` of host-level providers). Each
provider answers for its own objects (:meth:`Provider.diagnose`); this command only
gathers, orders and prints the checks (``kvmnet.engine.doctor``) and exits 1 when
any failed. It changes nothing and holds the state lock only for reading.
"""
from __future__ import annotations

import click

from kvmnet.cli import Ctx, KvmnetFailure
from kvmnet.commands.common import backend, locked, prepare_or_fail, provider_set

pass_ctx = click.make_pass_decorator(Ctx)


def managed_by_provider(snapshot) -> dict[str, dict[str, list]]:
    """``{provider instance: {type: [Managed]}}`` from the state's records."""
    from kvmnet.engine.resources import state_attrs
    from kvmnet.sdk.doctor import Managed
    out: dict[str, dict[str, list]] = {}
    for r in sorted(snapshot.instances.values(), key=lambda r: r.address):
        out.setdefault(r.provider, {}).setdefault(r.type, []).append(
            Managed(r.address, r.type, r.id, dict(state_attrs(r) or {})))
    return out


def gather_checks(ps, managed: dict[str, dict[str, list]], config_providers, netns) -> list:
    """Ask every provider the state or the config names; a provider that cannot
    answer becomes one failed check instead of stopping the others."""
    from kvmnet.engine.doctor import asked, provider_failure
    checks = []
    for name in sorted(set(managed) | set(config_providers)):
        mine = managed.get(name, {})
        if not asked(name, mine):
            continue            # nothing of this provider's to check
        try:
            provider = ps.get(name)
            checks += provider.diagnose(mine, netns)
        except Exception as e:              # noqa: BLE001 - reported as a failed check
            errors = getattr(getattr(e, "diagnostics", None), "errors", None)
            detail = "; ".join(map(str, errors)) if errors else (str(e) or type(e).__name__)
            checks.append(provider_failure(name, mine, detail))
    return checks


@click.command(name="doctor")
@click.option("--json", "as_json", is_flag=True,
              help="A JSON list of {layer, check, address, ok, detail, hint}")
@pass_ctx
def doctor(ctx: Ctx, as_json: bool):
    """Check, bottom up, that what kvmnet manages works: libvirt, networks, dnsmasq,
    ip_forward, forward rules, bridge ports, hot-plugged NICs. Exit 1 on any failure."""
    from kvmnet.engine.doctor import all_ok, host_netns, render_human, render_json
    from kvmnet.state import SHARED
    prepared = prepare_or_fail(ctx, validate=False)
    ps = provider_set(ctx, prepared)
    be = backend(ctx)
    try:
        with locked(ctx, be, SHARED):
            snap = be.read()
        checks = gather_checks(ps, managed_by_provider(snap), prepared.config.providers,
                               host_netns(ps.configs))
    finally:
        ps.close()
    if as_json:
        click.echo(render_json(checks))
    else:
        click.echo(render_human(checks), nl=False)
    if not all_ok(checks):
        raise KvmnetFailure()
