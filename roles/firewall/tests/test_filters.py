"""Unit tests of the firewall role's filters (npm run test:unit runs them with the toolchain's Python)."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "filter_plugins"))

from ansible.errors import AnsibleFilterError  # noqa: E402

import firewall  # noqa: E402

ZONES = {
    "ext": {"subnet": "10.90.10.0/24"},
    "dmz": {"subnet": "10.90.20.0/24"},
    "app": {"subnet": "10.90.30.0/24"},
    "data": {"subnet": "10.90.40.0/24"},
}
FLOWS = {"ext": ["dmz"], "dmz": ["app"], "app": ["data", "ext"], "data": []}
HOSTVARS = {
    "client": {"zone": "ext", "address": "10.90.10.10"},
    "gw1": {"zone": "dmz", "address": "10.90.20.11"},
    "app1": {"zone": "app", "address": "10.90.30.11"},
    "app2": {"zone": "app", "address": "10.90.30.12"},
    "db1": {"zone": "data", "address": "10.90.40.11"},
    "db2": {"zone": "data", "address": "10.90.40.12"},
}
GROUPS = {
    "all": list(HOSTVARS),
    "clients": ["client"],
    "gateways": ["gw1"],
    "app_servers": ["app1", "app2"],
    "etcd": ["db1", "db2"],
    "empty": [],
}


def resolve(rules, host="db1", owner="etcd"):
    return firewall.firewall_resolve(rules, owner, host, HOSTVARS, GROUPS, ZONES, FLOWS)


class Resolve(unittest.TestCase):
    def test_expands_groups_to_addresses_with_their_zones(self):
        [rule] = resolve([{"name": "client", "port": 2379, "from": ["etcd", "app_servers"]}])
        self.assertEqual(rule["proto"], "tcp")
        self.assertEqual(rule["port"], "2379")
        self.assertEqual([s["address"] for s in rule["sources"]], ["10.90.30.11", "10.90.30.12", "10.90.40.11", "10.90.40.12"])
        self.assertEqual({s["zone"] for s in rule["sources"]}, {"app", "data"})

    def test_zone_sources_become_the_zone_subnet(self):
        [rule] = resolve([{"name": "https", "port": 443, "from": ["zone:ext"], "to": ["10.90.20.100"]}], host="gw1", owner="nginx")
        self.assertEqual(rule["sources"], [{"address": "10.90.10.0/24", "zone": "ext", "via": "zone:ext"}])
        self.assertEqual(rule["to"], ["10.90.20.100"])

    def test_port_ranges_udp_and_vrrp(self):
        rules = resolve([
            {"name": "range", "port": "2379-2380", "from": ["etcd"]},
            {"name": "dns", "proto": "udp", "port": 53, "from": ["etcd"]},
            {"name": "vrrp", "proto": "vrrp", "from": ["etcd"]},
        ])
        self.assertEqual([r["port"] for r in rules], ["2379-2380", "53", None])

    def test_renders_nft_rules(self):
        lines = firewall.firewall_nft_host(resolve([
            {"name": "peer", "port": 2380, "from": ["etcd"]},
            {"name": "vrrp", "proto": "vrrp", "from": ["etcd"], "to": ["10.90.40.99"]},
        ]))
        self.assertEqual(lines, [
            'ip saddr { 10.90.40.11, 10.90.40.12 } tcp dport 2380 accept comment "etcd/peer"',
            'ip saddr { 10.90.40.11, 10.90.40.12 } ip daddr { 10.90.40.99 } ip protocol vrrp accept comment "etcd/vrrp"',
        ])

    def assert_refused(self, rules, message, host="db1"):
        with self.assertRaises(AnsibleFilterError) as caught:
            resolve(rules, host=host)
        self.assertIn(message, str(caught.exception))
        return str(caught.exception)

    def test_a_flow_the_zone_matrix_forbids_is_refused(self):
        text = self.assert_refused([{"name": "client", "port": 2379, "from": ["gateways"]}],
                                   "may not reach zone data: network_zone_flows allows dmz -> app")
        self.assertIn("etcd rule 'client' on db1", text)
        self.assert_refused([{"name": "x", "port": 1, "from": ["zone:ext"]}], "allows ext -> dmz")
        self.assert_refused([{"name": "out", "port": 25, "from": ["etcd"]}], "data -> nothing", host="client")

    def test_bad_declarations_name_the_problem(self):
        cases = [
            ([{"port": 1, "from": ["etcd"]}], "'name' is required"),
            ([{"name": "Bad Name", "port": 1, "from": ["etcd"]}], "'name' is required"),
            ([{"name": "a", "port": 1, "from": ["etcd"]}, {"name": "a", "port": 2, "from": ["etcd"]}], "two rules named 'a'"),
            ([{"name": "a", "proto": "icmp", "from": ["etcd"]}], "proto 'icmp' is not one of"),
            ([{"name": "a", "from": ["etcd"]}], "proto tcp needs a port"),
            ([{"name": "a", "port": 0, "from": ["etcd"]}], "outside 1-65535"),
            ([{"name": "a", "port": 70000, "from": ["etcd"]}], "outside 1-65535"),
            ([{"name": "a", "port": "9-3", "from": ["etcd"]}], "range is reversed"),
            ([{"name": "a", "port": "http", "from": ["etcd"]}], "is not a number"),
            ([{"name": "a", "port": True, "from": ["etcd"]}], "is not a number"),
            ([{"name": "a", "proto": "vrrp", "port": 1, "from": ["etcd"]}], "vrrp has no port"),
            ([{"name": "a", "port": 1}], "'from' must be a non-empty list"),
            ([{"name": "a", "port": 1, "from": ["nosuch"]}], "unknown inventory group 'nosuch'"),
            ([{"name": "a", "port": 1, "from": ["empty"]}], "group 'empty' in 'from' has no hosts"),
            ([{"name": "a", "port": 1, "from": ["zone:moon"]}], "unknown zone 'moon'"),
            ([{"name": "a", "port": 1, "from": ["etcd"], "to": ["10.90.40.300"]}], "is not an IPv4 address"),
            ([{"name": "a", "port": 1, "from": ["etcd"], "dport": 2}], "unknown keys dport"),
            (["just a string"], "a rule is a mapping"),
        ]
        for rules, message in cases:
            with self.subTest(message=message):
                self.assert_refused(rules, message)


class SiteRules(unittest.TestCase):
    def test_picks_rules_by_the_hosts_groups(self):
        rules = [
            {"name": "node-exporter", "port": 9100, "from": ["app_servers"], "groups": ["all"]},
            {"name": "pg-backup", "port": 5432, "from": ["etcd"], "groups": ["etcd"]},
        ]
        self.assertEqual([r["name"] for r in firewall.firewall_site_rules(rules, "app1", ["app_servers"])], ["node-exporter"])
        picked = firewall.firewall_site_rules(rules, "db1", ["etcd"])
        self.assertEqual([r["name"] for r in picked], ["node-exporter", "pg-backup"])
        self.assertNotIn("groups", picked[0])

    def test_a_site_rule_without_groups_is_refused(self):
        with self.assertRaises(AnsibleFilterError) as caught:
            firewall.firewall_site_rules([{"name": "x", "port": 1, "from": ["etcd"]}], "db1", ["etcd"])
        self.assertIn("needs 'groups'", str(caught.exception))


class ZoneRouter(unittest.TestCase):
    def hostvars_with(self, facts):
        hostvars = {name: dict(v, ansible_local={}) for name, v in HOSTVARS.items()}
        for host, (owner, rules) in facts.items():
            hostvars[host]["ansible_local"]["oms_firewall_" + owner] = json.loads(firewall.firewall_fact(rules, owner))
        return hostvars

    def test_forwards_only_flows_that_cross_zones(self):
        etcd = firewall.firewall_resolve([{"name": "client", "port": 2379, "from": ["etcd", "app_servers"]}],
                                         "etcd", "db1", HOSTVARS, GROUPS, ZONES, FLOWS)
        https = firewall.firewall_resolve([{"name": "https", "port": 443, "from": ["zone:ext"], "to": ["10.90.20.100"]}],
                                          "nginx", "gw1", HOSTVARS, GROUPS, ZONES, FLOWS)
        hostvars = self.hostvars_with({"db1": ("etcd", etcd), "gw1": ("nginx", https)})
        lines = firewall.firewall_zone_router(GROUPS["all"], hostvars, ZONES, FLOWS)
        self.assertEqual(lines, [
            {"from_zone": "app", "to_zone": "data",
             "rule": 'ip saddr { 10.90.30.11, 10.90.30.12 } ip daddr { 10.90.40.11 } tcp dport 2379 accept comment "etcd/client -> db1"'},
            {"from_zone": "ext", "to_zone": "dmz",
             "rule": 'ip saddr { 10.90.10.0/24 } ip daddr { 10.90.20.100 } tcp dport 443 accept comment "nginx/https -> gw1"'},
        ])

    def test_a_tampered_fact_cannot_open_a_forbidden_flow(self):
        hostvars = self.hostvars_with({})
        hostvars["db1"]["ansible_local"]["oms_firewall_evil"] = {"owner": "evil", "rules": [{
            "owner": "evil", "name": "x", "proto": "tcp", "port": "22", "to": [],
            "sources": [{"address": "10.90.10.10", "zone": "ext", "via": "clients"}]}]}
        with self.assertRaises(AnsibleFilterError) as caught:
            firewall.firewall_zone_router(GROUPS["all"], hostvars, ZONES, FLOWS)
        self.assertIn("allows ext -> dmz", str(caught.exception))

    def test_needs_every_hosts_facts(self):
        with self.assertRaises(AnsibleFilterError) as caught:
            firewall.firewall_zone_router(["db1"], HOSTVARS, ZONES, FLOWS)
        self.assertIn("no local facts of host db1", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
