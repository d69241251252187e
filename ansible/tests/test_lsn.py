"""The oms_lsn filter (ansible/filter_plugins/lsn.py) that ansible/restore.yml compares LSNs with."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "filter_plugins"))

from lsn import oms_lsn  # noqa: E402


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


if __name__ == "__main__":
    unittest.main()
