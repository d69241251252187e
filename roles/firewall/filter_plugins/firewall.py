"""Filters of the firewall role: turn the flows roles declare into checked, resolved rules.

A declaration (one item of a role's `<role>_firewall` list, or of `firewall_site_rules`):

    name:  short id, unique within its owner (a-z, 0-9, '-')
    proto: tcp (default) | udp | vrrp
    port:  1-65535, or "first-last" (tcp and udp only)
    from:  inventory groups, or "zone:<zone>" for a whole zone subnet
    to:    optional destination addresses on the host (e.g. the gateway VIP); default: any of its addresses
    groups: (firewall_site_rules only) the inventory groups whose hosts get the rule

Resolving expands the source groups to the members' inventory `address`, records each source's zone, and checks
every cross-zone source against `network_zone_flows` (which zones may open connections to which): a role can
never open a flow the zone matrix forbids, whatever its declaration says.
"""

import ipaddress
import json
import re

from ansible.errors import AnsibleFilterError

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
_PROTOS = ("tcp", "udp", "vrrp")


def _fail(where, problem):
    raise AnsibleFilterError("firewall: %s: %s" % (where, problem))


def _address(value, where):
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        _fail(where, "%r is not an IPv4 address" % (value,))


def _port(rule, proto, where):
    port = rule.get("port")
    if proto == "vrrp":
        if port is not None:
            _fail(where, "proto vrrp has no port (got %r)" % (port,))
        return None
    if port is None:
        _fail(where, "proto %s needs a port" % proto)
    text = str(port).strip()
    match = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", text)
    if not match or isinstance(port, bool):
        _fail(where, "port %r is not a number 1-65535 or a range 'first-last'" % (port,))
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else first
    if not (1 <= first <= 65535 and 1 <= last <= 65535) or last < first:
        _fail(where, "port %r is outside 1-65535 or its range is reversed" % (port,))
    return str(first) if first == last else "%d-%d" % (first, last)


def _sources(rule, where, groups, hostvars, zones):
    sources = rule.get("from")
    if not isinstance(sources, list) or not sources:
        _fail(where, "'from' must be a non-empty list of inventory groups or zone:<zone>")
    out = {}
    for source in sources:
        source = str(source)
        if source.startswith("zone:"):
            zone = source[len("zone:"):]
            if zone not in zones:
                _fail(where, "unknown zone %r in 'from' (zones: %s)" % (zone, ", ".join(sorted(zones))))
            cidr = str(ipaddress.IPv4Network(str(zones[zone]["subnet"]), strict=False))
            out[cidr] = {"address": cidr, "zone": zone, "via": source}
            continue
        if source not in groups:
            _fail(where, "unknown inventory group %r in 'from'" % source)
        members = groups[source]
        if not members:
            _fail(where, "inventory group %r in 'from' has no hosts" % source)
        for member in members:
            member_vars = hostvars[member]
            if "address" not in member_vars or "zone" not in member_vars:
                _fail(where, "host %s of group %s has no 'address'/'zone' in the inventory" % (member, source))
            address = _address(member_vars["address"], "%s (host %s)" % (where, member))
            out.setdefault(address, {"address": address, "zone": str(member_vars["zone"]), "via": source, "host": member})
    return [out[key] for key in sorted(out)]


def _check_zone_flows(sources, host_zone, zone_flows, where):
    for source in sources:
        if source["zone"] == host_zone:
            continue
        if host_zone not in (zone_flows.get(source["zone"]) or []):
            who = source.get("host") or source["address"]
            _fail(where, "source %s (%s, zone %s) may not reach zone %s: network_zone_flows allows %s -> %s"
                  % (source["via"], who, source["zone"], host_zone, source["zone"],
                     ", ".join(zone_flows.get(source["zone"]) or []) or "nothing"))


def firewall_resolve(rules, owner, host, hostvars, groups, zones, zone_flows):
    """Check the declarations of `owner` for `host` and return them resolved (sources as addresses with zones)."""
    where_owner = "rules of %s on %s" % (owner, host)
    if not _NAME.match(str(owner)):
        _fail(where_owner, "owner name %r is not a-z, 0-9, '-'" % (owner,))
    if rules is None:
        rules = []
    if not isinstance(rules, list):
        _fail(where_owner, "expected a list of rules, got %s" % type(rules).__name__)
    host_vars = hostvars[host]
    if "zone" not in host_vars or host_vars["zone"] not in zones:
        _fail(where_owner, "host has no zone of network_zones")
    host_zone = str(host_vars["zone"])
    seen = set()
    resolved = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            _fail("%s, rule %d" % (where_owner, index + 1), "a rule is a mapping, got %r" % (rule,))
        name = str(rule.get("name", ""))
        where = "%s rule %r on %s" % (owner, name or "#%d" % (index + 1), host)
        if not _NAME.match(name):
            _fail(where, "'name' is required: a-z, 0-9, '-' (at most 41 characters)")
        if name in seen:
            _fail(where, "two rules named %r" % name)
        seen.add(name)
        unknown = {str(k) for k in rule} - {"name", "proto", "port", "from", "to"}
        if unknown:
            _fail(where, "unknown keys %s (known: name, proto, port, from, to)" % ", ".join(sorted(unknown)))
        proto = str(rule.get("proto", "tcp"))
        if proto not in _PROTOS:
            _fail(where, "proto %r is not one of %s" % (proto, ", ".join(_PROTOS)))
        port = _port(rule, proto, where)
        to = rule.get("to") or []
        if not isinstance(to, list):
            _fail(where, "'to' must be a list of addresses")
        sources = _sources(rule, where, groups, hostvars, zones)
        _check_zone_flows(sources, host_zone, zone_flows, where)
        resolved.append({
            "owner": str(owner),
            "name": name,
            "proto": proto,
            "port": port,
            "to": sorted({_address(a, where) for a in to}),
            "sources": sources,
        })
    return resolved


def firewall_site_rules(rules, host, group_names):
    """The site rules (firewall_site_rules) whose `groups` include this host, without the `groups` key."""
    picked = []
    for index, rule in enumerate(rules or []):
        where = "firewall_site_rules #%d (%s)" % (index + 1, rule.get("name", "?") if isinstance(rule, dict) else rule)
        if not isinstance(rule, dict) or not isinstance(rule.get("groups"), list) or not rule["groups"]:
            _fail(where, "each site rule needs 'groups': a list of the inventory groups whose hosts get it")
        if set(rule["groups"]) & (set(group_names) | {"all"}):
            picked.append({k: v for k, v in rule.items() if k != "groups"})
    return picked


def _match(rule, sources, destinations):
    parts = []
    if sources:
        parts.append("ip saddr { %s }" % ", ".join(sources))
    if destinations:
        parts.append("ip daddr { %s }" % ", ".join(destinations))
    if rule["proto"] == "vrrp":
        parts.append("ip protocol vrrp")
    else:
        parts.append("%s dport %s" % (rule["proto"], rule["port"]))
    return " ".join(parts)


def firewall_nft_host(resolved):
    """nft rule lines for a host's input chain, one per resolved rule."""
    return ['%s accept comment "%s/%s"' % (_match(r, [s["address"] for s in r["sources"]], r["to"]), r["owner"], r["name"])
            for r in resolved]


def firewall_zone_router(hosts, hostvars, zones, zone_flows, fact_prefix="oms_firewall_"):
    """The zone router's allow rules: every declared flow that crosses zones, from each host's installed declarations.

    Declarations are read from the hosts' local facts (ansible_local.<fact_prefix><owner>), i.e. from what is
    installed on them, so the router always matches the hosts. Every flow is checked against the zone matrix again.
    """
    lines = []
    for host in sorted(hosts):
        host_vars = hostvars[host]
        local = host_vars.get("ansible_local")
        if local is None:
            _fail("zone router", "no local facts of host %s (gather them before rendering the router)" % host)
        host_zone = str(host_vars["zone"])
        own = [_address(host_vars["address"], "zone router (host %s)" % host)]
        for key in sorted(local):
            if not key.startswith(fact_prefix):
                continue
            for rule in (local[key] or {}).get("rules", []):
                where = "zone router: %s rule %r on %s" % (rule.get("owner"), rule.get("name"), host)
                crossing = [s for s in rule.get("sources", []) if s.get("zone") != host_zone]
                if not crossing:
                    continue
                _check_zone_flows(crossing, host_zone, zone_flows, where)
                for zone in sorted({s["zone"] for s in crossing}):
                    addresses = sorted(s["address"] for s in crossing if s["zone"] == zone)
                    lines.append({
                        "from_zone": zone,
                        "to_zone": host_zone,
                        "rule": '%s accept comment "%s/%s -> %s"' % (
                            _match(rule, addresses, rule.get("to") or own), rule["owner"], rule["name"], host),
                    })
    return sorted(lines, key=lambda line: (line["from_zone"], line["to_zone"], line["rule"]))


def firewall_fact(resolved, owner):
    """The local fact a host keeps of an owner's resolved rules (read back for the zone router and the matrix test)."""
    return json.dumps({"owner": owner, "rules": resolved}, indent=2, sort_keys=True) + "\n"


class FilterModule:
    def filters(self):
        return {
            "firewall_resolve": firewall_resolve,
            "firewall_site_rules": firewall_site_rules,
            "firewall_nft_host": firewall_nft_host,
            "firewall_zone_router": firewall_zone_router,
            "firewall_fact": firewall_fact,
        }
