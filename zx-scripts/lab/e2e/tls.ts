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
}
