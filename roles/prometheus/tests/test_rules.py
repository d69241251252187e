"""The kit's alert rules (roles/prometheus/files/rules) pass promtool and the kit's own checks (rules_check.py), and
rule files that are broken in each way the checks know are refused (npm run test:unit runs these)."""

import os
import shutil
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(__file__))

import rules_check  # noqa: E402

ROLE = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ROOT = os.path.abspath(os.path.join(ROLE, "..", ".."))

GOOD_RULE = """\
groups:
  - name: example
    rules:
      - alert: HostDown
        expr: up{job="node"} == 0
        for: 30s
        labels: {severity: critical}
        annotations:
          summary: "Host {{ $labels.instance }} does not answer"
          description: "It does not."
          runbook_url: docs/runbooks/alerts.md#hostdown
"""
GOOD_TEST = """\
rule_files: [rules.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - {series: 'up{job="node",instance="db1"}', values: 0 0 0 0}
    alert_rule_test:
      - eval_time: 45s
        alertname: HostDown
        exp_alerts:
          - exp_labels: {severity: critical, job: node, instance: db1}
            exp_annotations: {summary: Host db1 does not answer, description: It does not., runbook_url: docs/runbooks/alerts.md#hostdown}
"""


class KitRules(unittest.TestCase):
    def test_every_rule_ships(self):
        rules, tests = rules_check.kit_files(ROLE)
        self.assertGreater(len(rules), 0)
        self.assertEqual(rules_check.problems(rules, tests, ROOT), [])
        alerts = rules_check.alerts_of(rules)
        print("\n%d alerts in %d rule files, every one fired by a promtool test (%d test files)" % (len(alerts), len(rules), len(tests)))


class BrokenRules(unittest.TestCase):
    """Each broken copy is refused with a sentence naming what is wrong."""

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def check(self, rule, test=GOOD_TEST):
        rules = os.path.join(self.dir, "rules.yml")
        tests = os.path.join(self.dir, "rules.test.yml")
        with open(rules, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(rule))
        with open(tests, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(test))
        return rules_check.problems([rules], [tests], ROOT)

    def assert_refused(self, found, *fragments):
        text = "\n".join(found)
        for fragment in fragments:
            self.assertIn(fragment, text)

    def test_the_example_itself_passes(self):
        self.assertEqual(self.check(GOOD_RULE), [])

    def test_a_rule_file_that_does_not_parse(self):
        found = self.check(GOOD_RULE.replace('up{job="node"} == 0', 'up{job="node" == 0'))
        self.assert_refused(found, "promtool check rules refused them", "HostDown")

    def test_yaml_that_does_not_load(self):
        found = self.check(GOOD_RULE.replace("    rules:\n", "    rules: [\n"))
        self.assert_refused(found, "promtool check rules refused them")

    def test_an_alert_without_a_runbook_link(self):
        found = self.check(GOOD_RULE.replace("          runbook_url: docs/runbooks/alerts.md#hostdown\n", ""))
        self.assert_refused(found, "rules.yml: alert HostDown: has no runbook_url annotation")

    def test_a_runbook_link_outside_the_runbooks(self):
        found = self.check(GOOD_RULE.replace("docs/runbooks/alerts.md#hostdown", "https://wiki.example/hostdown"))
        self.assert_refused(found, "runbook_url must be docs/runbooks/FILE.md#section (got 'https://wiki.example/hostdown')")

    def test_a_runbook_section_that_does_not_exist(self):
        found = self.check(GOOD_RULE.replace("alerts.md#hostdown", "alerts.md#hostgone"))
        self.assert_refused(found, "runbook_url names section #hostgone, which docs/runbooks/alerts.md does not have")

    def test_a_runbook_file_that_does_not_exist(self):
        found = self.check(GOOD_RULE.replace("alerts.md#hostdown", "hosts.md#hostdown"))
        self.assert_refused(found, "runbook_url names docs/runbooks/hosts.md, which does not exist")

    def test_an_alert_without_a_severity_the_routes_know(self):
        found = self.check(GOOD_RULE.replace("severity: critical", "severity: page"))
        self.assert_refused(found, "alert HostDown: severity must be one of critical, warning (got 'page')")

    def test_an_alert_no_test_fires(self):
        rule = GOOD_RULE + GOOD_RULE.split("rules:\n", 1)[1].replace("HostDown", "HostGone")
        found = self.check(rule)
        self.assert_refused(found, "rules.yml: alert HostGone: no promtool test makes it fire")

    def test_a_promtool_test_that_fails(self):
        found = self.check(GOOD_RULE.replace("for: 30s", "for: 5m"))
        self.assert_refused(found, "promtool test rules failed", "HostDown")


if __name__ == "__main__":
    unittest.main()
