"""oms-cert-expiry against certificates openssl makes here: what it writes for a certificate, a bundle, a file that
holds none, and a bad command line (python -m unittest discover -s roles/node_exporter/tests; npm test runs it)."""
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import tempfile
import time
import unittest
from datetime import datetime, timezone

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "files", "oms-cert-expiry")
loader = importlib.machinery.SourceFileLoader("oms_cert_expiry", SCRIPT)
spec = importlib.util.spec_from_loader("oms_cert_expiry", loader)
expiry = importlib.util.module_from_spec(spec)
loader.exec_module(expiry)


def make_cert(folder, name, days, key_too=False):
    """A self-signed certificate valid for `days` days, and its notAfter as openssl states it."""
    crt, key = os.path.join(folder, f"{name}.crt"), os.path.join(folder, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", str(days), "-subj", f"/CN={name}"],
                   check=True, capture_output=True)
    end = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", crt], check=True, capture_output=True, text=True)
    not_after = datetime.strptime(end.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y GMT").replace(tzinfo=timezone.utc)
    return crt, int(not_after.timestamp())


class CertExpiryTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.pki = os.path.join(self.dir.name, "pki")
        os.makedirs(os.path.join(self.pki, "clients"))
        self.out = os.path.join(self.dir.name, "certificates.prom")

    def tearDown(self):
        self.dir.cleanup()

    def run_script(self, *args):
        return subprocess.run([SCRIPT, *args], capture_output=True, text=True)

    def metrics(self):
        with open(self.out) as f:
            text = f.read()
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(oms_\S+) (\d+)$", text, re.M)}, text

    def test_every_certificate_of_every_file_with_its_not_after(self):
        host, host_end = make_cert(self.pki, "host", 400)
        client, client_end = make_cert(os.path.join(self.pki, "clients"), "order-service", 10)
        ca_old, old_end = make_cert(self.dir.name, "ca-old", 30)
        ca_new, new_end = make_cert(self.dir.name, "ca-new", 3650)
        with open(os.path.join(self.pki, "ca-bundle.pem"), "w") as bundle:
            for f in (ca_old, ca_new):
                with open(f) as c:
                    bundle.write(c.read())
        before = int(time.time())
        result = self.run_script(self.out, self.pki)
        self.assertEqual(result.returncode, 0, result.stderr)
        metrics, text = self.metrics()
        bundle = os.path.join(self.pki, "ca-bundle.pem")
        expected = {(host, "CN=host", host_end), (client, "CN=order-service", client_end),
                    (bundle, "CN=ca-old", old_end), (bundle, "CN=ca-new", new_end)}
        found = {(m.group(1), m.group(2), int(m.group(3))) for m in re.finditer(
            r'^oms_certificate_not_after_seconds\{file="([^"]+)",subject="([^"]+)",issuer="[^"]+",serial="[0-9a-f]+"\} (\d+)$',
            text, re.M)}
        self.assertEqual(found, expected)
        self.assertNotIn("oms_certificate_read_errors{", text)
        self.assertGreaterEqual(metrics["oms_certificate_expiry_last_run_seconds"], before)
        # keys are never read as certificates
        self.assertNotIn(".key", text)

    def test_a_file_without_a_certificate_is_a_read_error_and_the_others_are_still_written(self):
        make_cert(self.pki, "host", 400)
        with open(os.path.join(self.pki, "broken.crt"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        with open(os.path.join(self.pki, "empty.pem"), "w") as f:
            f.write("")
        result = self.run_script(self.out, self.pki)
        self.assertEqual(result.returncode, 0, result.stderr)
        _, text = self.metrics()
        for name in ("broken.crt", "empty.pem"):
            self.assertIn(f'oms_certificate_read_errors{{file="{os.path.join(self.pki, name)}"}} 1', text)
        self.assertIn('subject="CN=host"', text)

    def test_a_bad_command_line_is_refused_and_writes_nothing(self):
        for args, reason in (
            ([], "usage"),
            ([self.out], "usage"),
            ([os.path.join(self.dir.name, "certificates.txt"), self.pki], "must end in .prom"),
            ([os.path.join(self.dir.name, "nowhere", "c.prom"), self.pki], "does not exist"),
            ([self.out, os.path.join(self.dir.name, "missing")], "no such file or folder"),
        ):
            result = self.run_script(*args)
            self.assertEqual(result.returncode, 2, args)
            self.assertIn(reason, result.stderr)
            self.assertFalse(os.path.exists(self.out))

    def test_label_values_are_escaped(self):
        self.assertEqual(expiry.label('a"b\\c\nd'), 'a\\"b\\\\c\\nd')


if __name__ == "__main__":
    unittest.main()
