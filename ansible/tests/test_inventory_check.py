"""The inventory check (ansible/check-inventory.yml): its filter on its own, and the playbook run for real by the
pinned ansible-playbook on the kit's inventories and on broken copies of them (npm run test:unit runs these)."""

import copy
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "ansible", "filter_plugins"))

import inventory_check  # noqa: E402

NETWORK = {
    "network_zones": {
        "ext": {"subnet": "10.90.10.0/24", "router": "10.90.10.1"},
        "dmz": {"subnet": "10.90.20.0/24", "router": "10.90.20.1"},
        "app": {"subnet": "10.90.30.0/24", "router": "10.90.30.1"},
        "data": {"subnet": "10.90.40.0/24", "router": "10.90.40.1"},
    },
    "network_mgmt": {"subnet": "10.90.0.0/24", "controller": "10.90.0.1"},
    "network_gateway_vip": "10.90.20.100",
    "network_gateway_name": "api.oms.lab",
    "network_domain": "oms.lab",
    "network_zone_flows": {"ext": ["dmz"], "dmz": ["app"], "app": ["data", "ext"], "data": []},
    "network_time_sources": ["10.90.0.1"],
}
HOSTS = {
    "gw1": ("dmz", "10.90.20.11", "10.90.0.21"),
    "gw2": ("dmz", "10.90.20.12", "10.90.0.22"),
    "app1": ("app", "10.90.30.11", "10.90.0.31"),
    "app2": ("app", "10.90.30.12", "10.90.0.32"),
    "db1": ("data", "10.90.40.11", "10.90.0.51"),
    "db2": ("data", "10.90.40.12", "10.90.0.52"),
    "db3": ("data", "10.90.40.13", "10.90.0.53"),
}
GROUPS = {
    "all": list(HOSTS),
    "gateways": ["gw1", "gw2"],
    "app_servers": ["app1", "app2"],
    "haproxy": ["app1", "app2"],
    "etcd": ["db1", "db2", "db3"],
    "postgres": ["db1", "db2", "db3"],
}
RULES = {
    "gateways": {"zone": "dmz", "min": 2},
    "app_servers": {"zone": "app", "min": 2},
    "haproxy": {"zone": "app", "contains": ["app_servers"]},
    "etcd": {"zone": "data", "min": 3, "odd": True, "why": "quorum"},
    "postgres": {"zone": "data", "min": 3},
}


def hostvars(hosts=None):
    return {name: {"zone": z, "address": a, "ansible_host": m} for name, (z, a, m) in (hosts or HOSTS).items()}


def problems(network=None, hosts=None, groups=None, rules=None):
    return inventory_check.inventory_problems(
        groups or GROUPS, hostvars(hosts), network or NETWORK, RULES if rules is None else rules
    )


class FilterTest(unittest.TestCase):
    def test_a_valid_inventory_has_no_problems(self):
        self.assertEqual(problems(), [])

    def test_an_even_etcd_count_names_the_group_and_its_hosts(self):
        groups = dict(GROUPS, etcd=["db1", "db2", "db3", "gw1"])
        found = problems(groups=groups)
        self.assertIn("group etcd: has 4 hosts (db1, db2, db3, gw1); it needs an odd number (quorum)", found)
        self.assertIn("group etcd: host gw1 is in zone dmz; etcd hosts belong in zone data", found)

    def test_too_few_hosts_is_one_problem(self):
        found = problems(groups=dict(GROUPS, gateways=["gw1"]))
        self.assertEqual(found, ["group gateways: has 1 host (gw1); it needs at least 2"])

    def test_an_app_server_without_haproxy(self):
        found = problems(groups=dict(GROUPS, haproxy=["app1"]))
        self.assertEqual(found, ["group haproxy: must include every app_servers host; missing: app2"])

    def test_overlapping_subnets(self):
        network = copy.deepcopy(NETWORK)
        network["network_zones"]["dmz"]["subnet"] = "10.90.16.0/20"
        network["network_zones"]["dmz"]["router"] = "10.90.16.1"
        found = problems(network=network)
        self.assertIn("network_zones.dmz.subnet: 10.90.16.0/20 overlaps zone app (10.90.30.0/24)", found)

    def test_management_overlapping_a_zone(self):
        network = copy.deepcopy(NETWORK)
        network["network_mgmt"] = {"subnet": "10.90.0.0/16", "controller": "10.90.0.1"}
        found = problems(network=network)
        self.assertIn("network_mgmt.subnet: 10.90.0.0/16 overlaps zone app (10.90.30.0/24)", found)

    def test_vip_outside_the_dmz_and_vip_taken(self):
        self.assertEqual(
            problems(network=dict(NETWORK, network_gateway_vip="10.90.30.100")),
            ["network_gateway_vip: 10.90.30.100 is outside the dmz subnet 10.90.20.0/24"],
        )
        self.assertEqual(
            problems(network=dict(NETWORK, network_gateway_vip="10.90.20.11")),
            ["network_gateway_vip: 10.90.20.11 is already used by host gw1 (address)"],
        )

    def test_hosts_addresses_and_zones(self):
        hosts = dict(HOSTS, app2=("app", "10.90.40.12", "10.90.0.32"), db3=("dta", "10.90.40.13", "10.90.0.51"))
        found = problems(hosts=hosts)
        self.assertIn("host app2: address 10.90.40.12 is outside the app zone subnet 10.90.30.0/24", found)
        self.assertIn("host db3: zone 'dta' is not one of network_zones (app, data, dmz, ext)", found)
        self.assertIn("host db3 ansible_host: 10.90.0.51 is already used by host db1 (ansible_host)", found)

    def test_ansible_host_may_be_a_dns_name_but_not_outside_management(self):
        hosts = dict(HOSTS, gw1=("dmz", "10.90.20.11", "gw1.mgmt.example.com"), gw2=("dmz", "10.90.20.12", "10.91.0.22"))
        self.assertEqual(problems(hosts=hosts), ["host gw2: ansible_host 10.91.0.22 is outside the management subnet 10.90.0.0/24"])

    def test_time_sources(self):
        self.assertEqual(problems(network=dict(NETWORK, network_time_sources=["ntp1.example.com", "192.0.2.123"])), [])
        self.assertEqual(problems(network=dict(NETWORK, network_time_sources=[])), [
            "network_time_sources: must list the NTP servers every host follows (addresses or DNS names on the "
            "management network; the lab: the controller), got []"])
        found = problems(network=dict(NETWORK, network_time_sources=["10.90.40.5", "not a name", "10.90.0.1", "10.90.0.1"]))
        self.assertEqual(found, [
            "network_time_sources: 10.90.40.5 lies in zone data (10.90.40.0/24): hosts reach their time sources over "
            "the management network, and the zones may not open flows to it",
            "network_time_sources: 'not a name' is neither an IPv4 address nor a DNS name",
            "network_time_sources: 10.90.0.1 is listed twice",
        ])
        self.assertIn("network_time_sources: lists 9 servers; chrony needs at most 8 (4 is plenty)",
                      problems(network=dict(NETWORK, network_time_sources=["10.90.0.%d" % i for i in range(1, 10)])))

    def test_bad_values_are_problems_not_crashes(self):
        network = dict(NETWORK, network_zones={"dmz": {"subnet": "10.90.20.5/24"}, "app": "x"}, network_mgmt=None,
                       network_domain="not a name", network_zone_flows={"dmz": ["nowhere"]})
        found = problems(network=network)
        self.assertIn("network_zones.dmz.subnet: must be an IPv4 network such as 10.1.2.0/24 (host bits zero), got '10.90.20.5/24'", found)
        self.assertIn("network_zones.app: must be {subnet, router}, got 'x'", found)
        self.assertIn("network_mgmt.subnet: must be an IPv4 network, got nothing", found)
        self.assertIn("network_domain: must be a DNS name such as oms.example.com, got 'not a name'", found)
        self.assertIn("network_zone_flows.dmz: unknown zone 'nowhere' (known zones: )", found)
        self.assertIn("network_zones: has no data zone (the kit's zones: ext, dmz, app, data)", found)
        self.assertIn("network_time_sources: must list the NTP servers every host follows (addresses or DNS names on "
                      "the management network; the lab: the controller), got nothing",
                      problems(network=dict(NETWORK, network_time_sources=None)))
        self.assertEqual(inventory_check.inventory_problems({}, {}, {}, {})[-1], "inventory: has no hosts")


def ansible_playbook(inventory, playbook="check-inventory.yml", *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible", "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="false")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
               os.path.join(ROOT, "ansible", playbook), *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


class PlaybookTest(unittest.TestCase):
    """The playbook as an operator runs it: the kit's inventories pass, broken copies fail naming the problem."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="oms-inventory-check-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def broken(self, source, edit):
        """A copy of an inventory (links followed) with edit(hosts, network) applied to its hosts.yml and network.yml."""
        target = os.path.join(self.tmp, os.path.basename(source))
        shutil.copytree(os.path.join(ROOT, source), target, symlinks=False)
        paths = (os.path.join(target, "hosts.yml"), os.path.join(target, "group_vars", "all", "network.yml"))
        data = []
        for path in paths:
            with open(path, encoding="utf-8") as f:
                data.append(yaml.safe_load(f))
        edit(*data)
        for path, value in zip(paths, data):
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump(value, f)
        return target

    def assert_rejected(self, result, *messages):
        self.assertNotEqual(result.returncode, 0, result.stdout)
        output = " ".join((result.stdout + result.stderr).split())
        for message in messages:
            self.assertIn(message, output)

    def test_the_kits_inventories_pass(self):
        for inventory in ("inventories/lab", "inventories/vagrant", "inventories/production.example"):
            result = ansible_playbook(os.path.join(ROOT, inventory))
            self.assertEqual(result.returncode, 0, inventory + ":\n" + result.stdout + result.stderr)
            self.assertIn("failed=0", result.stdout)

    def test_even_etcd_and_zookeeper_counts(self):
        def edit(hosts, _network):
            groups = hosts["all"]["children"]
            del groups["etcd"]["hosts"]["db3"]
            groups["zookeeper"]["hosts"]["kafka4"] = {"zone": "data", "address": "172.20.3.24", "ansible_host": "172.20.0.54"}
            groups["kafka"]["hosts"]["kafka4"] = None

        result = ansible_playbook(self.broken("inventories/production.example", edit))
        self.assert_rejected(
            result,
            "group etcd: has 2 hosts (db1, db2); it needs at least 3",
            "group zookeeper: has 4 hosts (kafka1, kafka2, kafka3, kafka4); it needs an odd number",
        )

    def test_one_gateway(self):
        def edit(hosts, _network):
            del hosts["all"]["children"]["gateways"]["hosts"]["gw2"]

        result = ansible_playbook(self.broken("inventories/production.example", edit))
        self.assert_rejected(result, "group gateways: has 1 host (gw1); it needs at least 2")

    def test_overlapping_subnets_and_a_vip_outside_the_dmz(self):
        def edit(_hosts, network):
            network["network_zones"]["app"]["subnet"] = "172.20.0.0/22"
            network["network_gateway_vip"] = "172.20.9.100"

        result = ansible_playbook(self.broken("inventories/production.example", edit))
        self.assert_rejected(
            result,
            "network_zones.dmz.subnet: 172.20.1.0/24 overlaps zone app (172.20.0.0/22)",
            "network_mgmt.subnet: 172.20.0.0/24 overlaps zone app (172.20.0.0/22)",
            "network_gateway_vip: 172.20.9.100 is outside the dmz subnet 172.20.1.0/24",
        )

    def test_no_backup_host(self):
        def edit(hosts, network):
            del hosts["all"]["children"]["backup"]
            del network["network_zone_flows"]["ops"]

        result = ansible_playbook(self.broken("inventories/production.example", edit))
        self.assert_rejected(result, "group backup: has 0 hosts (none); it needs at least 1 (the pgBackRest repository")

    def test_backup_host_in_the_data_zone(self):
        def edit(hosts, _network):
            hosts["all"]["children"]["backup"]["hosts"] = {"db1": None}

        result = ansible_playbook(self.broken("inventories/production.example", edit))
        self.assert_rejected(result, "group backup: host db1 is in zone data; backup hosts belong in zone ops")

    def test_monitoring_host_in_a_zone_it_watches(self):
        def edit(hosts, _network):
            hosts["all"]["children"]["monitoring"]["hosts"] = {"app1": None}

        result = ansible_playbook(self.broken("inventories/production.example", edit))
        self.assert_rejected(result, "group monitoring: host app1 is in zone app; monitoring hosts belong in zone ops")

    def test_alerts_that_could_go_nowhere(self):
        inventory = os.path.join(ROOT, "inventories/production.example")
        result = ansible_playbook(inventory, "check-inventory.yml", "-e",
                                  '{"prometheus_alert_recipients": [], "prometheus_smtp_relay": "smtp.example.com"}')
        self.assert_rejected(result, "prometheus_alert_recipients: needs at least one on-call email address",
                             'prometheus_smtp_relay: needs the SMTP relay alerts go through as host:port (got "smtp.example.com")')
        result = ansible_playbook(inventory, "check-inventory.yml", "-e", '{"prometheus_alert_recipients": ["on-call"]}')
        self.assert_rejected(result, 'and only addresses (got ["on-call"])')

    def test_backup_playbook_refuses_a_bad_type_and_a_missing_host(self):
        result = ansible_playbook(os.path.join(ROOT, "inventories/production.example"), "backup.yml", "-e", "backup_type=fuul")
        self.assert_rejected(result, 'backup_type must be full, diff or incr (got "fuul")')

        def edit(hosts, _network):
            del hosts["all"]["children"]["backup"]

        result = ansible_playbook(self.broken("inventories/production.example", edit), "backup.yml")
        self.assert_rejected(result, "the inventory needs exactly one host in group backup", "nothing was backed up")

    def test_restore_refuses_bad_requests_before_reaching_a_host(self):
        inventory = os.path.join(ROOT, "inventories/production.example")
        cases = [
            (["-e", "restore_type=time", "-e", "restore_target=2026-12-05T02:21:55+00"], 'restore_confirm=oms, the cluster\'s name'),
            (["-e", "restore_type=yesterday", "-e", "restore_confirm=oms"], 'needs restore_type time, lsn, name or latest (got "yesterday")'),
            (["-e", "restore_type=name", "-e", "restore_target=Before Migration", "-e", "restore_confirm=oms"], "for name a restore point"),
            (["-e", "restore_type=latest", "-e", "restore_set=last-monday", "-e", "restore_confirm=oms"], 'restore_set, if given, a backup'),
            (["-e", "restore_type=time", "-e", "restore_target=2026-12-05T02:21:55", "-e", "restore_confirm=oms"], "with its time zone"),
            (["-e", "restore_type=lsn", "-e", "restore_target=27018058", "-e", "restore_confirm=oms"], "for lsn one like 0/27018058"),
            (["-e", "restore_type=time", "-e", "restore_target=2999-01-01T00:00:00Z", "-e", "restore_confirm=oms"], "is in the future"),
        ]
        for extra, message in cases:
            result = ansible_playbook(inventory, "restore.yml", *extra)
            self.assert_rejected(result, "restore refused, nothing was changed", message)
            self.assertNotIn("Check the repository", result.stdout)

    def test_restore_point_refuses_a_bad_name_before_reaching_a_host(self):
        inventory = os.path.join(ROOT, "inventories/production.example")
        for name in ("", "Before Migration", "-leading-dash", "x" * 64):
            result = ansible_playbook(inventory, "restore-point.yml", "-e", "restore_point=" + name)
            self.assert_rejected(result, "no restore point was created", "restore_point must be 1 to 63 lower-case letters")
            self.assertNotIn("Check that the name is new", result.stdout)

    def test_site_yml_stops_at_the_check_before_touching_a_host(self):
        def edit(hosts, _network):
            del hosts["all"]["children"]["gateways"]["hosts"]["gw2"]

        result = ansible_playbook(self.broken("inventories/production.example", edit), "site.yml")
        self.assert_rejected(result, "group gateways: has 1 host (gw1); it needs at least 2")
        self.assertNotIn("UNREACHABLE", result.stdout)
        self.assertNotIn("Baseline of every host", result.stdout)


if __name__ == "__main__":
    unittest.main()
