"""oms-backup-metrics: the figures it writes from pgBackRest's info and from pg_stat_archiver, and its refusal of a bad
command line (python -m unittest discover -s roles/pgbackrest/tests; npm test runs it). The lab test
(zx-scripts/lab/e2e/backup.ts) checks the same figures against the repository and PostgreSQL themselves."""
import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "files", "oms-backup-metrics")
loader = importlib.machinery.SourceFileLoader("oms_backup_metrics", SCRIPT)
spec = importlib.util.spec_from_loader("oms_backup_metrics", loader)
metrics = importlib.util.module_from_spec(spec)
loader.exec_module(metrics)


def backup(kind, start, stop, delta, error=False):
    return {"type": kind, "label": f"L{stop}", "error": error, "timestamp": {"start": start, "stop": stop},
            "info": {"size": 10, "delta": 10, "repository": {"size": delta * 2, "delta": delta}}}


def samples(lines):
    return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in lines if not line.startswith("#")}


class RepositoryTest(unittest.TestCase):
    def test_the_newest_backup_of_each_type(self):
        info = [{"name": "oms", "status": {"code": 0, "message": "ok"}, "backup": [
            backup("full", 100, 160, 5000), backup("incr", 200, 210, 40), backup("incr", 300, 305, 30),
            backup("full", 400, 470, 6000), backup("incr", 500, 520, 50, error=True)]}]
        got = samples(metrics.repository_lines(json.dumps(info)))
        self.assertEqual(got, {
            "oms_backup_info_up": 1,
            'oms_backup_last_completion_seconds{stanza="oms",type="full"}': 470,
            'oms_backup_last_completion_seconds{stanza="oms",type="incr"}': 305,
            'oms_backup_last_duration_seconds{stanza="oms",type="full"}': 70,
            'oms_backup_last_duration_seconds{stanza="oms",type="incr"}': 5,
            'oms_backup_last_repository_bytes{stanza="oms",type="full"}': 6000,
            'oms_backup_last_repository_bytes{stanza="oms",type="incr"}': 30,
            'oms_backup_count{stanza="oms"}': 5,
            'oms_backup_stanza_ok{stanza="oms"}': 1,
        })

    def test_a_stanza_in_error_and_one_without_backups(self):
        info = [{"name": "oms", "status": {"code": 2, "message": "no valid backups"}, "backup": []}]
        got = samples(metrics.repository_lines(json.dumps(info)))
        self.assertEqual(got, {"oms_backup_info_up": 1, 'oms_backup_count{stanza="oms"}': 0, 'oms_backup_stanza_ok{stanza="oms"}': 0})

    def test_no_answer_is_up_0(self):
        self.assertEqual(samples(metrics.repository_lines(None)), {"oms_backup_info_up": 0})


class ArchiverTest(unittest.TestCase):
    def test_a_primary_that_archives(self):
        got = samples(metrics.archiver_lines("1765000000|1764990000|1234|3|0\n"))
        self.assertEqual(got, {
            "oms_pg_archiver_up": 1, "oms_pg_in_recovery": 0, "oms_pg_archiver_last_archived_seconds": 1765000000,
            "oms_pg_archiver_last_failed_seconds": 1764990000, "oms_pg_archiver_archived_total": 1234,
            "oms_pg_archiver_failed_total": 3,
        })

    def test_no_answer_is_up_0(self):
        self.assertEqual(samples(metrics.archiver_lines(None)), {"oms_pg_archiver_up": 0})


class CommandLineTest(unittest.TestCase):
    def test_a_bad_command_line_is_refused_and_writes_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "backup.prom")
            for args, reason in (
                ([], "give a mode"),
                (["backups", out], "give a mode"),
                (["archiver", os.path.join(d, "backup.txt"), "--port", "5432"], "must end in .prom"),
                (["archiver", os.path.join(d, "none", "b.prom"), "--port", "5432"], "does not exist"),
                (["archiver", out], "takes --port"),
                (["archiver", out, "--port", "x"], "takes a number"),
                (["repository", out, "--stanza", "oms"], "takes --stanza and --user"),
                (["repository", out, "--stanza", "oms", "--port", "1"], "takes --stanza and --user"),
            ):
                result = subprocess.run([SCRIPT, *args], capture_output=True, text=True)
                self.assertEqual(result.returncode, 2, args)
                self.assertIn(reason, result.stderr)
                self.assertIn("usage:", result.stderr)
                self.assertFalse(os.path.exists(out))

    def test_labels_are_escaped(self):
        self.assertEqual(metrics.gauge("m", "h", [({"a": 'x"y'}, 1)])[-1], 'm{a="x\\"y"} 1')


if __name__ == "__main__":
    unittest.main()
