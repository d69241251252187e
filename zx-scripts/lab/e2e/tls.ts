// One TLS rule for every listener of the kit: TLS 1.3, and a TLS 1.2 handshake never completes. Each host's listening
// sockets are found as they are (ss), not from a list, and each is tried from the host itself with the host's own
// certificate (serverAuth + clientAuth, of the kit's CA): a TLS 1.2 refusal is then the version's, not a missing
// client certificate's. PostgreSQL is reached with its STARTTLS (SSLRequest). The client host stands in for the
// internet (the email provider's listeners are the provider's business) and is left out.
import assert from 'node:assert/strict';
import { running } from '../../drills/postgres.ts';
import { assertOk, inHost, inventory, it } from './harness.ts';

/** Listeners that are not TLS by design: SSH (its own protocol), and the gateways' port 80 (a redirect to 443 only). */
const NOT_TLS: Record<string, number[]> = { '*': [22], gateways: [80] };

const PROBE = `
P=/etc/oms/pki
# one handshake: the client's whole output and its exit status (124: the 10 s timeout), so a failure explains itself
attempt() { target=$1; shift; (timeout 10 openssl s_client -connect "$target" -cert $P/host.crt -key $P/host.key -CAfile $P/ca-bundle.pem "$@" </dev/null 2>&1; echo "exit=$?") | tr -d '\\000'; }
# printf, never echo: dash's echo reads backslashes, and a session ticket's dump can hold '\\0' (echo wrote a NUL,
# grep called the output binary and printed nothing: CI saw a listener 'without' TLS 1.3 once per few runs)
version() { grep -a -m1 -o 'New, TLSv1\\.[0-9]' | sed 's/New, //'; }
# what the client saw when no handshake completed: its first error, or its exit status
seen() { grep -a -m1 -iE 'error|alert|refused|errno|exit=' | tr -s ' \\t' '_' | cut -c1-120; }
for l in $(ss -Hltn | awk '{print $4}' | sort -u); do
  addr=\${l%:*}; port=\${l##*:}
  # loopback, also as an IPv4-mapped IPv6 address (a JVM's 127.0.0.1 listener shows as [::ffff:127.0.0.1])
  case "$addr" in 127.*|'[::1]'|'[::ffff:127.'*) continue ;; esac
  addr=$(echo "$addr" | sed -e 's/^\\[::ffff://' -e 's/\\]$//' -e 's/^\\[::$//' -e 's/^0\\.0\\.0\\.0$//' -e 's/^\\*$//')
  [ -n "$addr" ] || addr=$ZONE
  how=direct why=-
  out=$(attempt "$addr:$port" -tls1_3); v13=$(printf '%s\\n' "$out" | version)
  if [ -z "$v13" ]; then
    pg=$(attempt "$addr:$port" -tls1_3 -starttls postgres); v13=$(printf '%s\\n' "$pg" | version)
    if [ -n "$v13" ]; then how=postgres; else why="direct:$(printf '%s\\n' "$out" | seen),postgres:$(printf '%s\\n' "$pg" | seen)"; fi
  fi
  if [ "$how" = postgres ]; then v12=$(attempt "$addr:$port" -tls1_2 -starttls postgres | version); else v12=$(attempt "$addr:$port" -tls1_2 | version); fi
  echo "$port $how \${v13:-none} \${v12:-refused} $why"
done`;

interface Listener {
  host: string;
  port: number;
  how: string;
  tls13: string;
  tls12: string;
  /** what the client saw when TLS 1.3 did not come (first error line, or exit=124 for the 10 s timeout) */
  why: string;
}

export function tlsTests(): void {
  it('TLS: every listener of the kit speaks TLS 1.3 and completes no TLS 1.2 handshake (found with ss on every host)', async (t) => {
    const hosts = inventory.hosts.filter((h) => !h.groups.includes('mail_sink') && running(h.name));
    const found: Listener[] = [];
    for (const h of hosts) {
      const r = await inHost(h.name, 'sh', '-c', `ZONE=${h.address}; ${PROBE}`);
      assertOk(r, `the TLS probe on ${h.name}`);
      for (const line of r.stdout.trim().split('\n').filter(Boolean)) {
        const [port = '', how = '', tls13 = '', tls12 = '', why = '-'] = line.split(' ');
        found.push({ host: h.name, port: Number(port), how, tls13, tls12, why });
      }
    }
    const plainAllowed = (l: Listener): boolean => {
      const groups = inventory.hosts.find((h) => h.name === l.host)?.groups ?? [];
      return ['*', ...groups].some((g) => NOT_TLS[g]?.includes(l.port));
    };
    const tls = found.filter((l) => !plainAllowed(l));
    t.diagnostic(`${String(tls.length)} TLS listeners on ${String(hosts.length)} hosts: ${[...new Set(tls.map((l) => `${String(l.port)}${l.how === 'postgres' ? ' (STARTTLS)' : ''}`))].sort().join(', ')}`);
    assert.ok(tls.length >= hosts.length, 'the probe found the listeners');
    assert.deepEqual(tls.filter((l) => l.tls13 !== 'TLSv1.3').map((l) => `${l.host}:${String(l.port)} (${l.why})`), [], 'listeners that do not speak TLS 1.3');
    assert.deepEqual(tls.filter((l) => l.tls12 !== 'refused').map((l) => `${l.host}:${String(l.port)} completed a ${l.tls12} handshake`), [], 'listeners that accept TLS 1.2');
    for (const l of found.filter(plainAllowed)) assert.equal(l.tls13, 'none', `${l.host}:${String(l.port)} is listed as not TLS but speaks it`);
  });
  // Least privilege on keys: every private key on every host (PEM keys, PKCS#12 and Java key stores), who owns it
  // and who may read it. None is readable by other users; Nginx's workers read none (the master reads them as root);
  // a service's own keys are readable by its user alone.
  it('keys: every private key on every host is readable only by its owner and the daemons that use it; Nginx\'s workers read none', async (t) => {
    const hosts = inventory.hosts.filter((h) => running(h.name));
    const LIST = `find /etc /opt /usr/local /var/lib -xdev -type f -size -256k \\( -name '*.key' -o -name '*.pem' -o -name '*.p12' -o -name '*.jks' -o -name 'ssh_host_*_key' \\) 2>/dev/null |
      while read -r f; do
        case "$f" in *.p12|*.jks) ;; *) grep -q 'PRIVATE KEY-----' "$f" || continue ;; esac
        g=$(stat -c %G "$f"); printf '%s %s %s %s %s\\n' "$f" "$(stat -c %U "$f")" "$g" "$(stat -c %a "$f")" "$(getent group "$g" | cut -d: -f4 | tr -d ' ')"
      done
      for p in $(pgrep -x nginx); do u=$(ps -o user= -p "$p"); [ "$u" = root ] || echo "nginx-worker $(ps -o supgrp= -p "$p" | tr -d ' ')"; done`;
    const rows: string[] = [];
    const problems: string[] = [];
    for (const h of hosts) {
      const r = await inHost(h.name, 'sh', '-c', LIST);
      assertOk(r, `the key listing on ${h.name}`);
      for (const line of r.stdout.trim().split('\n').filter(Boolean)) {
        const [path = '', owner = '', group = '', mode = '', members = ''] = line.split(' ');
        if (path === 'nginx-worker') {
          if (owner.split(',').includes('ssl-cert')) problems.push(`${h.name}: an Nginx worker runs with the key group (groups ${owner})`);
          continue;
        }
        const bits = parseInt(mode, 8);
        const readers = [owner, ...(bits & 0o040 ? [`group ${group}${members ? ` (${members})` : ''}`] : [])];
        rows.push(`${h.name} ${path} ${owner}:${group} ${mode} read by ${readers.join(', ')}`);
        if (bits & 0o007) problems.push(`${h.name}: ${path} (${mode}) is open to every user`);
        if (bits & 0o020) problems.push(`${h.name}: ${path} (${mode}) is writable by its group`);
        if (bits & 0o040 && members.split(',').includes('www-data')) problems.push(`${h.name}: ${path} is readable by www-data (group ${group})`);
        const service = /^\/etc\/oms\/([a-z-]+)\//.exec(path)?.[1];
        if (service !== undefined && service !== 'pki' && (owner !== 'root' || group !== service || mode !== '640' || (members !== '' && members !== service))) {
          problems.push(`${h.name}: ${path} is ${owner}:${group} ${mode} (members ${members || 'none'}): a service's key must be root:${service} 640, its group the service alone`);
        }
      }
    }
    t.diagnostic(`${String(rows.length)} private keys on ${String(hosts.length)} hosts: ${rows.join('; ')}`);
    assert.ok(rows.length >= hosts.length, `every host holds its key (found ${String(rows.length)})`);
    assert.deepEqual(problems, [], 'keys readable beyond the daemons that use them');
  });
}
