"""The inventory check of the OMS kit (ansible/check-inventory.yml): every problem of an inventory, before anything
on a host is changed.

`inventory_problems` takes what Ansible itself made of the inventory (groups, each host's variables, the network
variables of group `all`), so it checks any inventory Ansible can read: YAML or INI files, vaulted variables, a
dynamic inventory. It returns a list of messages, each naming the field, host or group concerned; an empty list is a
valid inventory. It never raises on bad data: a wrong value is a problem to report, not a crash.

The network (group_vars/all/network.yml):
    network_zones        {zone: {subnet: CIDR, router: address in subnet}}; subnets never overlap
    network_mgmt         {subnet: CIDR, controller: address in subnet}; overlaps no zone
    network_gateway_vip  an address inside the dmz subnet that no host or router uses
    network_gateway_name, network_domain   DNS names
    network_zone_flows   {zone: [zones]}, zone names known
    network_time_sources the NTP servers every host follows (chrony): 1-8 addresses or DNS names, reached over the
                         management network, so never an address inside a zone (hosts of other zones could not)
Each host: `zone` (a known zone), `address` (inside that zone's subnet), `ansible_host` (an address on the
management subnet, or a DNS name); no address used twice.
Each group, as the playbook's `inventory_check_groups` says: the zone its hosts must live in, a minimum count, an
odd count (quorums), the groups it must contain (HAProxy on every app host: the services reach PostgreSQL through
their own host's HAProxy).
"""

import ipaddress
import re

_DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


def _network(value):
    try:
        return ipaddress.IPv4Network(str(value), strict=True)
    except ValueError:
        return None


def _address(value):
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        return None


def _show(value):
    return "nothing" if value is None else repr(value)


def _hosts_text(hosts):
    return ", ".join(hosts) if hosts else "none"


class _Check:
    def __init__(self):
        self.problems = []
        self.owners = {}

    def problem(self, where, message):
        self.problems.append("%s: %s" % (where, message))

    def claim(self, address, owner, where):
        """Records who uses an address; a second user is a problem."""
        previous = self.owners.get(address)
        if previous is not None:
            self.problem(where, "%s is already used by %s" % (address, previous))
        else:
            self.owners[address] = owner


def _zones(check, zones):
    if not isinstance(zones, dict) or not zones:
        check.problem("network_zones", "must map each zone name to {subnet, router}, got %s" % _show(zones))
        return {}
    found = {}
    for name in sorted(zones):
        spec = zones[name]
        where = "network_zones.%s" % name
        if not isinstance(spec, dict):
            check.problem(where, "must be {subnet, router}, got %s" % _show(spec))
            continue
        subnet = _network(spec.get("subnet"))
        if subnet is None:
            check.problem(where + ".subnet", "must be an IPv4 network such as 10.1.2.0/24 (host bits zero), got %s"
                          % _show(spec.get("subnet")))
            continue
        router = _address(spec.get("router"))
        if router is None or router not in subnet or router in (subnet.network_address, subnet.broadcast_address):
            check.problem(where + ".router", "must be a host address inside %s, got %s" % (subnet, _show(spec.get("router"))))
        else:
            check.claim(router, "the %s zone router" % name, where + ".router")
        for other, other_subnet in found.items():
            if subnet.overlaps(other_subnet):
                check.problem(where + ".subnet", "%s overlaps zone %s (%s)" % (subnet, other, other_subnet))
        found[name] = subnet
    return found


def _mgmt(check, mgmt, zones):
    spec = mgmt if isinstance(mgmt, dict) else {}
    subnet = _network(spec.get("subnet"))
    if subnet is None:
        check.problem("network_mgmt.subnet", "must be an IPv4 network, got %s" % _show(spec.get("subnet")))
        return None
    controller = _address(spec.get("controller"))
    if controller is None or controller not in subnet:
        check.problem("network_mgmt.controller", "must be an address inside %s, got %s" % (subnet, _show(spec.get("controller"))))
    else:
        check.claim(controller, "the controller", "network_mgmt.controller")
    for name, zone_subnet in zones.items():
        if subnet.overlaps(zone_subnet):
            check.problem("network_mgmt.subnet", "%s overlaps zone %s (%s)" % (subnet, name, zone_subnet))
    return subnet


def _names_and_flows(check, network, zones):
    for field in ("network_gateway_name", "network_domain"):
        value = network.get(field)
        if not isinstance(value, str) or not _DNS_NAME.match(value):
            check.problem(field, "must be a DNS name such as oms.example.com, got %s" % _show(value))
    flows = network.get("network_zone_flows")
    if not isinstance(flows, dict):
        check.problem("network_zone_flows", "must map each zone to the zones it may open connections to, got %s" % _show(flows))
        return
    for source in sorted(flows):
        targets = flows[source]
        if source not in zones:
            check.problem("network_zone_flows.%s" % source, "unknown zone (known zones: %s)" % ", ".join(sorted(zones)))
        if not isinstance(targets, list):
            check.problem("network_zone_flows.%s" % source, "must be a list of zones, got %s" % _show(targets))
            continue
        for target in targets:
            if target not in zones:
                check.problem("network_zone_flows.%s" % source, "unknown zone %s (known zones: %s)" % (_show(target), ", ".join(sorted(zones))))


def _time_sources(check, value, zones):
    where = "network_time_sources"
    if not isinstance(value, list) or not value:
        check.problem(where, "must list the NTP servers every host follows (addresses or DNS names on the management "
                      "network; the lab: the controller), got %s" % _show(value))
        return
    if len(value) > 8:
        check.problem(where, "lists %d servers; chrony needs at most 8 (4 is plenty)" % len(value))
    seen = set()
    for source in value:
        address = _address(source)
        if address is None and not (isinstance(source, str) and _DNS_NAME.match(source)):
            check.problem(where, "%s is neither an IPv4 address nor a DNS name" % _show(source))
            continue
        if str(source) in seen:
            check.problem(where, "%s is listed twice" % source)
        seen.add(str(source))
        for name, subnet in sorted(zones.items()):
            if address is not None and address in subnet:
                check.problem(where, "%s lies in zone %s (%s): hosts reach their time sources over the management "
                              "network, and the zones may not open flows to it" % (address, name, subnet))


def _hosts(check, hosts, hostvars, zones, mgmt):
    """Each host's zone and addresses. Returns host -> zone name, for the hosts whose zone is known."""
    placed = {}
    for host in hosts:
        values = hostvars.get(host) or {}
        where = "host %s" % host
        zone = values.get("zone")
        if zone is None:
            check.problem(where, "is in no zone (set zone to one of: %s)" % ", ".join(sorted(zones)))
        elif zone not in zones:
            check.problem(where, "zone %s is not one of network_zones (%s)" % (_show(zone), ", ".join(sorted(zones))))
        else:
            placed[host] = zone
        address = _address(values.get("address"))
        if address is None:
            check.problem(where, "address must be an IPv4 address, got %s" % _show(values.get("address")))
        elif zone in zones and address not in zones[zone]:
            check.problem(where, "address %s is outside the %s zone subnet %s" % (address, zone, zones[zone]))
        else:
            check.claim(address, "host %s (address)" % host, where + " address")
        reach = values.get("ansible_host", host)
        reach_address = _address(reach)
        if reach_address is None:
            if not isinstance(reach, str) or not (_DNS_NAME.match(reach) or re.match(r"^[a-z][a-z0-9-]*$", reach)):
                check.problem(where, "ansible_host must be a management address or a DNS name, got %s" % _show(reach))
        elif mgmt is not None and reach_address not in mgmt:
            check.problem(where, "ansible_host %s is outside the management subnet %s" % (reach_address, mgmt))
        else:
            check.claim(reach_address, "host %s (ansible_host)" % host, where + " ansible_host")
    return placed


def _vip(check, network, zones, gateways):
    value = network.get("network_gateway_vip")
    if not gateways:
        return
    vip = _address(value)
    if vip is None:
        check.problem("network_gateway_vip", "must be an IPv4 address in the dmz subnet, got %s" % _show(value))
    elif "dmz" not in zones:
        check.problem("network_gateway_vip", "%s: there is no dmz zone for it" % vip)
    elif vip not in zones["dmz"]:
        check.problem("network_gateway_vip", "%s is outside the dmz subnet %s" % (vip, zones["dmz"]))
    else:
        check.claim(vip, "the gateway VIP", "network_gateway_vip")


def _groups(check, groups, placed, rules):
    for group in sorted(rules):
        rule = rules[group] or {}
        members = list(groups.get(group) or [])
        where = "group %s" % group
        why = (" (%s)" % rule["why"]) if rule.get("why") else ""
        count = len(members)
        minimum = int(rule.get("min", 0))
        if count < minimum:
            check.problem(where, "has %d host%s (%s); it needs at least %d%s"
                          % (count, "" if count == 1 else "s", _hosts_text(members), minimum, why))
        elif rule.get("odd") and count % 2 == 0 and count > 0:
            check.problem(where, "has %d hosts (%s); it needs an odd number%s" % (count, _hosts_text(members), why))
        zone = rule.get("zone")
        if zone:
            for host in members:
                if host in placed and placed[host] != zone:
                    check.problem(where, "host %s is in zone %s; %s hosts belong in zone %s" % (host, placed[host], group, zone))
        for inner in rule.get("contains") or []:
            missing = [h for h in groups.get(inner) or [] if h not in members]
            if missing:
                check.problem(where, "must include every %s host; missing: %s" % (inner, _hosts_text(missing)))


def inventory_problems(groups, hostvars, network, rules):
    """Every problem of the inventory, as messages naming the field, host or group; [] when it is valid.

    groups:   Ansible's `groups` (group -> hosts; `all` lists every host)
    hostvars: host -> its variables (zone, address, ansible_host)
    network:  the network_* variables of group all
    rules:    group -> {zone, min, odd, contains, why} (inventory_check_groups)
    """
    check = _Check()
    network = network if isinstance(network, dict) else {}
    hosts = list((groups or {}).get("all") or [])
    zones = _zones(check, network.get("network_zones"))
    declared = network.get("network_zones") if isinstance(network.get("network_zones"), dict) else {}
    for required in ("dmz", "app", "data"):
        if declared and required not in declared:
            check.problem("network_zones", "has no %s zone (the kit's zones: ext, dmz, app, data)" % required)
    mgmt = _mgmt(check, network.get("network_mgmt"), zones)
    _names_and_flows(check, network, zones)
    _time_sources(check, network.get("network_time_sources"), zones)
    if not hosts:
        check.problem("inventory", "has no hosts")
    placed = _hosts(check, hosts, hostvars or {}, zones, mgmt)
    _vip(check, network, zones, (groups or {}).get("gateways"))
    _groups(check, groups or {}, placed, rules if isinstance(rules, dict) else {})
    return check.problems


class FilterModule:
    def filters(self):
        return {"inventory_problems": inventory_problems}
