"""The checks every alert rule of the kit must pass before it ships (test_rules.py runs them on roles/prometheus;
`npm run test:unit` runs that):

- every rule file parses and its expressions are valid PromQL (promtool check rules);
- every alert has a severity (critical or warning), a summary, a description and a runbook_url naming a section
  that exists in the repository's runbooks (docs/runbooks/FILE.md#anchor);
- every alert is made to fire by at least one promtool test (tests/*.test.yml), and those tests pass.
"""

import glob
import os
import re
import subprocess

import yaml

SEVERITIES = ("critical", "warning")
ANNOTATIONS = ("summary", "description", "runbook_url")


def anchors(markdown):
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).lower())
            out.add(text.replace(" ", "-"))
    return out


def promtool(*args):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)


def alerts_of(rule_files):
    """[(file, alert rule)] of every alerting rule in the files (files that do not load are skipped)."""
    out = []
    for path in rule_files:
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f) or {}
        except yaml.YAMLError:
            continue
        for group in doc.get("groups") or []:
            for rule in group.get("rules") or []:
                if "alert" in rule:
                    out.append((path, rule))
    return out


def fired_by_tests(test_files):
    """The alert names some promtool test expects to fire (a non-empty exp_alerts)."""
    fired = set()
    for path in test_files:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for test in doc.get("tests") or []:
            for case in test.get("alert_rule_test") or []:
                if case.get("exp_alerts"):
                    fired.add(case.get("alertname"))
    return fired


def problems(rule_files, test_files, repo_root):
    """Every problem of the rules and their tests, as sentences naming the file and the alert; [] when they ship."""
    found = []
    if not rule_files:
        return ["no rule files"]
    check = promtool("check", "rules", *rule_files)
    if check.returncode != 0:
        found.append("promtool check rules refused them: " + " ".join((check.stdout + check.stderr).split()))
    names = {}
    for path, rule in alerts_of(rule_files):
        where = "%s: alert %s" % (os.path.basename(path), rule["alert"])
        if rule["alert"] in names:
            found.append("%s: also defined in %s" % (where, names[rule["alert"]]))
        names[rule["alert"]] = os.path.basename(path)
        severity = (rule.get("labels") or {}).get("severity")
        if severity not in SEVERITIES:
            found.append("%s: severity must be one of %s (got %r)" % (where, ", ".join(SEVERITIES), severity))
        annotations = rule.get("annotations") or {}
        for key in ANNOTATIONS:
            if not str(annotations.get(key, "")).strip():
                found.append("%s: has no %s annotation" % (where, key))
        link = str(annotations.get("runbook_url", ""))
        if link:
            m = re.match(r"^(docs/runbooks/[\w.-]+\.md)#([\w-]+)$", link)
            if not m:
                found.append("%s: runbook_url must be docs/runbooks/FILE.md#section (got %r)" % (where, link))
            else:
                doc = os.path.join(repo_root, m.group(1))
                if not os.path.isfile(doc):
                    found.append("%s: runbook_url names %s, which does not exist" % (where, m.group(1)))
                else:
                    with open(doc, encoding="utf-8") as f:
                        if m.group(2) not in anchors(f.read()):
                            found.append("%s: runbook_url names section #%s, which %s does not have" % (where, m.group(2), m.group(1)))
    if not test_files:
        found.append("no promtool tests")
        return found
    fired = fired_by_tests(test_files)
    for name in sorted(set(names) - fired):
        found.append("%s: alert %s: no promtool test makes it fire" % (names[name], name))
    run = promtool("test", "rules", *test_files)
    if run.returncode != 0:
        found.append("promtool test rules failed: " + (run.stdout + run.stderr).strip())
    return found


def kit_files(role_dir):
    """The kit's rule files and their tests."""
    return (sorted(glob.glob(os.path.join(role_dir, "files", "rules", "*.yml"))),
            sorted(glob.glob(os.path.join(role_dir, "tests", "*.test.yml"))))
