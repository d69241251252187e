"""oms-etcd-snapshot and oms-etcd-restore-member (roles/etcd/files) against a real three-member etcd cluster
(Debian's etcd-server, the lab's version) on loopback: snapshots are saved, checked and pruned; a cluster whose
members lost their data (no quorum left) is rebuilt from a snapshot with every key; bad input changes nothing."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

FILES = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "etcd", "files")
SNAPSHOT = os.path.join(FILES, "oms-etcd-snapshot")
RESTORE = os.path.join(FILES, "oms-etcd-restore-member")
TOKEN = "oms-test"
ENV = dict(os.environ, ETCDCTL_API="3")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*argv, check=False):
    return subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=120, check=check)


class EtcdSnapshotTest(unittest.TestCase):
    def setUp(self):
        # toolchain/apt-packages.txt installs them; a machine without them fails here rather than skipping
        for tool in ("etcd", "etcdctl", "flock"):
            self.assertIsNotNone(shutil.which(tool), f"{tool} is not installed (npm run bootstrap installs it)")
        self.root = tempfile.mkdtemp(prefix="oms-etcd-")
        self.members = {}
        for name in ("e1", "e2", "e3"):
            self.members[name] = {"client": free_port(), "peer": free_port(), "data": os.path.join(self.root, name), "proc": None}
        self.cluster = ",".join(f"{n}=http://127.0.0.1:{m['peer']}" for n, m in self.members.items())
        self.endpoints = ",".join(f"http://127.0.0.1:{m['client']}" for m in self.members.values())
        self.snapshots = os.path.join(self.root, "snapshots")
        os.mkdir(self.snapshots, 0o700)
        for name in self.members:
            self.start(name)
        self.wait_healthy()

    def tearDown(self):
        for name in self.members:
            self.kill(name)
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self, name):
        m = self.members[name]
        log = open(os.path.join(self.root, f"{name}.log"), "ab")
        m["proc"] = subprocess.Popen(
            ["etcd", "--name", name, "--data-dir", m["data"],
             "--listen-client-urls", f"http://127.0.0.1:{m['client']}", "--advertise-client-urls", f"http://127.0.0.1:{m['client']}",
             "--listen-peer-urls", f"http://127.0.0.1:{m['peer']}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{m['peer']}",
             "--initial-cluster", self.cluster, "--initial-cluster-token", TOKEN, "--initial-cluster-state", "new",
             "--heartbeat-interval", "100", "--election-timeout", "1000"],
            stdout=log, stderr=log)
        log.close()

    def kill(self, name):
        proc = self.members[name]["proc"]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        self.members[name]["proc"] = None

    def wait_healthy(self, timeout=30):
        deadline = time.time() + timeout
        while True:
            out = run("etcdctl", "--endpoints", self.endpoints, "endpoint", "health", "-w", "json")
            try:
                health = json.loads(out.stdout or "[]")
            except json.JSONDecodeError:
                health = []
            if len(health) == 3 and all(h.get("health") for h in health):
                return
            if time.time() > deadline:
                self.fail(f"etcd not healthy: {out.stdout} {out.stderr}")
            time.sleep(0.3)

    def put(self, key, value):
        run("etcdctl", "--endpoints", self.endpoints, "put", key, value, check=True)

    def get(self, key):
        return run("etcdctl", "--endpoints", self.endpoints, "get", "--print-value-only", key, check=True).stdout.strip()

    def snapshot(self, keep="3"):
        return run(SNAPSHOT, "--endpoints", self.endpoints, "--dir", self.snapshots, "--keep", keep)

    def saved(self):
        return sorted(f for f in os.listdir(self.snapshots) if f.endswith(".db"))

    def restore_args(self, name, snapshot):
        m = self.members[name]
        return [RESTORE, "--snapshot", snapshot, "--name", name, "--initial-cluster", self.cluster, "--token", TOKEN,
                "--peer-url", f"http://127.0.0.1:{m['peer']}", "--data-dir", m["data"]]

    def test_snapshots_are_checked_named_by_revision_and_pruned(self):
        self.put("/service/oms/leader", "db1")
        first = self.snapshot()
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertRegex(first.stdout, r"saved .*/etcd-\d{8}T\d{6}Z-rev\d+\.db from http://127\.0\.0\.1:\d+: revision \d+, \d+ keys")
        [name] = self.saved()
        self.assertEqual(os.stat(os.path.join(self.snapshots, name)).st_mode & 0o777, 0o600)
        check = subprocess.run(["sha256sum", "-c", name + ".sha256"], cwd=self.snapshots, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        for i in range(3):
            self.put(f"/k{i}", str(i))
            time.sleep(1.1)  # names carry the time to the second
            self.assertEqual(self.snapshot(keep="2").returncode, 0)
        self.assertEqual(len(self.saved()), 2)
        self.assertEqual(len([f for f in os.listdir(self.snapshots) if f.endswith(".sha256")]), 2)
        self.assertEqual([f for f in os.listdir(self.snapshots) if f.startswith(".partial")], [])

    def test_a_cluster_that_lost_its_quorum_is_rebuilt_from_a_snapshot(self):
        self.put("/service/oms/leader", "db2")
        self.put("/service/oms/config", '{"ttl": 20}')
        self.assertEqual(self.snapshot().returncode, 0)
        self.put("/service/oms/after-snapshot", "lost by design")
        # two members lose their disks: no quorum; the third is stopped too
        for name in self.members:
            self.kill(name)
        shutil.rmtree(self.members["e1"]["data"])
        shutil.rmtree(self.members["e2"]["data"])
        [snap] = self.saved()
        path = os.path.join(self.snapshots, snap)
        for name in self.members:
            out = run(*self.restore_args(name, path))
            self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"restored .*/e3 for e3 from .*; the old folder is .*/e3\.before-restore-\d{8}T\d{6}Z")
        self.assertTrue(os.path.isdir(out.stdout.split("the old folder is ")[1].strip()))
        for name in self.members:
            self.start(name)
        self.wait_healthy()
        self.assertEqual(self.get("/service/oms/leader"), "db2")
        self.assertEqual(self.get("/service/oms/config"), '{"ttl": 20}')
        self.assertEqual(self.get("/service/oms/after-snapshot"), "")
        members = json.loads(run("etcdctl", "--endpoints", self.endpoints, "member", "list", "-w", "json", check=True).stdout)
        self.assertEqual(sorted(m["name"] for m in members["members"]), ["e1", "e2", "e3"])
        self.put("/service/oms/leader", "db3")  # the restored cluster takes writes
        self.assertEqual(self.get("/service/oms/leader"), "db3")

    def test_bad_input_changes_nothing(self):
        self.assertEqual(self.snapshot().returncode, 0)
        [snap] = self.saved()
        path = os.path.join(self.snapshots, snap)
        data = self.members["e1"]["data"]
        before = sorted(os.listdir(self.root))
        # etcd still running on the folder
        out = run(*self.restore_args("e1", path))
        self.assertEqual(out.returncode, 2)
        self.assertIn("an etcd holds", out.stderr)
        self.kill("e1")
        # a damaged snapshot: its checksum, then (without one) etcd's own check
        damaged = os.path.join(self.root, "damaged.db")
        with open(path, "rb") as src, open(damaged, "wb") as dst:
            dst.write(src.read()[:4096])
        shutil.copy(path + ".sha256", damaged + ".sha256")
        out = run(*self.restore_args("e1", damaged))
        self.assertEqual(out.returncode, 2)
        self.assertIn("does not match its checksum", out.stderr)
        os.remove(damaged + ".sha256")
        out = run(*self.restore_args("e1", damaged))
        self.assertEqual(out.returncode, 2)
        self.assertIn("not a readable etcd snapshot", out.stderr)
        # a name that is not in the cluster, a missing snapshot, a missing argument
        args = self.restore_args("e1", path)
        args[args.index("--name") + 1] = "e9"
        self.assertIn("--initial-cluster has no e9=", run(*args).stderr)
        self.assertIn("no snapshot at", run(*self.restore_args("e1", path + ".nope")).stderr)
        self.assertEqual(run(RESTORE, "--snapshot", path).returncode, 2)
        self.assertEqual(sorted(os.listdir(self.root)), sorted(before + ["damaged.db"]))
        self.assertTrue(os.path.isfile(os.path.join(data, "member", "snap", "db")))
        # no member answers: exit 1, nothing left behind; a bad --keep: exit 2
        for name in self.members:
            self.kill(name)
        out = self.snapshot()
        self.assertEqual(out.returncode, 1)
        self.assertIn("no member gave a snapshot", out.stderr)
        self.assertEqual(self.saved(), [snap])
        self.assertEqual([f for f in os.listdir(self.snapshots) if f.startswith(".partial")], [])
        self.assertIn("--keep takes a whole number", run(SNAPSHOT, "--endpoints", self.endpoints, "--dir", self.snapshots, "--keep", "0").stderr)


if __name__ == "__main__":
    unittest.main()
