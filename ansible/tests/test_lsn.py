"""The LSN filters (ansible/filter_plugins/lsn.py) that ansible/restore.yml compares LSNs and picks backups with."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "filter_plugins"))

from lsn import oms_backup_before_lsn, oms_lsn  # noqa: E402


class LsnTest(unittest.TestCase):
    def test_halves_are_hexadecimal(self):
        self.assertEqual(oms_lsn("0/8000050"), 0x8000050)
        self.assertEqual(oms_lsn("16/B374D848"), 0x16 * 2**32 + 0xB374D848)

    def test_order_follows_the_wal(self):
        self.assertLess(oms_lsn("0/FFFFFFFF"), oms_lsn("1/0"))
        self.assertLess(oms_lsn("0/9"), oms_lsn("0/10"))

    def test_anything_else_is_a_clear_error(self):
        for bad in ("", "27018058", "0/", "/1", "0/xyz", None, "1/2/3"):
            with self.assertRaisesRegex(ValueError, "not a PostgreSQL LSN"):
                oms_lsn(bad)


def backup(label, stop):
    return {"label": label, "lsn": {"start": "0/1", "stop": stop}}


class BackupBeforeLsnTest(unittest.TestCase):
    BACKUPS = [backup("F1", "0/9000000"), backup("F1_I1", "0/B000100"), backup("F2", "0/1A000000"), backup("F2_I1", "1/0")]

    def test_the_newest_that_ends_at_or_before_the_target(self):
        self.assertEqual(oms_backup_before_lsn(self.BACKUPS, "0/C000000"), "F1_I1")
        self.assertEqual(oms_backup_before_lsn(self.BACKUPS, "0/1A000000"), "F2", "one that ends at the target fits")
        self.assertEqual(oms_backup_before_lsn(self.BACKUPS, "2/0"), "F2_I1")

    def test_none_before_the_target(self):
        self.assertEqual(oms_backup_before_lsn(self.BACKUPS, "0/8FFFFFF"), "")
        self.assertEqual(oms_backup_before_lsn([], "0/1"), "")

    def test_a_bad_target_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "not a PostgreSQL LSN"):
            oms_backup_before_lsn(self.BACKUPS, "yesterday")


if __name__ == "__main__":
    unittest.main()
