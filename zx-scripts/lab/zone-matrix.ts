// The zone-matrix check: from every host of the lab (and the controller), try every declared flow and every
// forbidden one, and compare what gets through with what the firewall declarations say.
//
// What is declared is read from the hosts themselves (/etc/ansible/facts.d/oms_firewall_*.fact, written by
// roles/firewall), so the check follows the roles as they grow. The probes:
//   - zone plane: every host -> every other host's zone addresses (and the VIP where a gateway holds it), on every
//     declared TCP port, SSH, and one port nobody declares. Open when a rule on the destination lists the source,
//     blocked otherwise (so: every zone to every other zone's service ports, data to anywhere, DMZ to data...).
//   - management plane: the controller -> every host's management address (SSH only), hosts -> each other's
//     management addresses (nothing), hosts -> the controller (the package proxy, and NTP when it is one of the
//     inventory's time sources).
//   - time (NTP over UDP, answered by a real NTP server or not at all): every host -> each time source inside the lab
//     (open), and every host -> every other host's zone address (blocked: hosts serve time to no one).
// A listener is started on every probed address and port that nothing listens on yet, so "blocked" means the
// firewall or the router dropped it, never that nothing was there.
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Inventory } from '../lib/inventory.ts';
import { parseCidr, parseIPv4 } from '../lib/ipv4.ts';
import { secondsSince } from '../lib/stats.ts';
import { paths } from './state.ts';
import { NTP_PORT, controllerServesTime } from './time-source.ts';

/** A flow one owner (role) declares on a host, as roles/firewall records it. */
export interface Declared {
  host: string;
  owner: string;
  name: string;
  proto: string;
  port: string | null;
  to: string[];
  sources: { address: string; zone: string }[];
}

export interface Probe {
  from: string;
  fromZone: string;
  to: string;
  toZone: string;
  address: string;
  port: number;
  /** tcp: a connection; ntp: an NTP request over UDP, open when a server's answer comes back */
  proto: 'tcp' | 'ntp';
  expect: 'open' | 'blocked';
  /** the rule that allows it, or why it must be blocked */
  because: string;
}

/**
 * 'open' (connected: the socket has its peer), 'timeout', 'refused', 'unreachable', 'closed' (connect() returned but
 * the attempt ended without a connection: see PROBER), or another errno name
 */
export type Outcome = string;

export interface MatrixReport {
  checked: number;
  allowedOpen: number;
  forbiddenBlocked: number;
  /**
   * acceptedBy, for a probe that connected: whether one of the check's own listeners accepted it (and from which
   * source address), or something else answered (a service on that port, or a path the check does not know of)
   */
  mismatches: (Probe & { got: Outcome; acceptedBy?: string })[];
  /** "from-zone -> to-zone" -> counts */
  byZones: Record<string, { open: number; blocked: number; mismatched: number }>;
  /** the NTP probes among them */
  ntp: { open: number; blocked: number; mismatched: number };
  /** declared flows that were not probed (not TCP), as owner/name on host, and time sources outside the lab */
  notProbed: string[];
  ports: number[];
  seconds: number;
  /** allowed flows whose first attempt timed out among thousands at once, probed again alone: how many, how many connected */
  probedAgain: { probes: number; open: number };
}

export const CONTROLLER = 'controller';
/** a port no role declares: proves the default drop */
const UNDECLARED_PORT = 9;
const CONNECT_TIMEOUT_S = 2;
// connection attempts each source makes at once: nearly every attempt is a forbidden flow that waits out the whole
// timeout, so the matrix takes about (attempts per source / PROBE_THREADS) x CONNECT_TIMEOUT_S (128 took 83 s for
// 74,339 flows on the 16-host lab)
const PROBE_THREADS = 512;
// An allowed flow that timed out in that crowd has not been shown blocked: on 2 busy cores a listener's SYN-ACK or the
// prober's own thread can be late by more than the 2 s (CI's run of bb9d8f8 took 187 s for a matrix that takes 51 s
// and found 2 mismatches it did not show). Each such flow is probed again on its own with this timeout: a flow a rule
// drops still times out, and is still a mismatch.
const PROBE_AGAIN_TIMEOUT_S = 10;

/** The allowed flows whose outcome proves nothing yet: no answer in time, or an attempt the kernel ended unanswered. */
export function probeAgain(probes: readonly Probe[], outcomes: ReadonlyMap<string, Outcome>): Probe[] {
  return probes.filter((p) => p.expect === 'open' && ['timeout', 'closed'].includes(outcomes.get(key(p)) ?? ''));
}

/** Reads the declarations installed on every lab host (their roles/firewall local facts). */
export function readDeclarations(inventory: Inventory): Declared[] {
  const declared: Declared[] = [];
  for (const host of inventory.hosts) {
    const dir = join(paths.hostRoot(host.name), 'etc/ansible/facts.d');
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).filter((f) => /^oms_firewall_.+\.fact$/.test(f)).sort()) {
      const fact = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { rules: Omit<Declared, 'host'>[] };
      for (const rule of fact.rules) declared.push({ ...rule, host: host.name });
    }
  }
  return declared;
}

function portRange(port: string | null): [number, number] | undefined {
  if (port === null) return undefined;
  const [first, last] = port.split('-').map(Number);
  return first === undefined ? undefined : [first, last ?? first];
}

function sourceMatches(source: string, address: string): boolean {
  if (!source.includes('/')) return source === address;
  const cidr = parseCidr(source);
  const value = parseIPv4(address);
  return cidr !== undefined && value !== undefined && value >= cidr.network && value < cidr.network + 2 ** (32 - cidr.prefix);
}

/**
 * Every probe and what it must give. `extraAddresses` are addresses hosts hold besides their inventory one
 * (the gateway VIP on the active gateway).
 */
export function planProbes(
  inventory: Inventory,
  declared: Declared[],
  options: { aptProxyPort: number; extraAddresses?: ReadonlyMap<string, readonly string[]> },
): { probes: Probe[]; ports: number[]; notProbed: string[] } {
  const tcp = declared.filter((d) => d.proto === 'tcp' && portRange(d.port) !== undefined);
  const notProbed = declared.filter((d) => !tcp.includes(d)).map((d) => `${d.owner}/${d.name} on ${d.host} (${d.proto})`);
  // the lab probes only the time source it serves itself: traffic to any other address would leave the lab
  const controller = inventory.mgmt.controller;
  for (const source of inventory.timeSources) if (source !== controller) notProbed.push(`time source ${source} (outside the lab)`);
  const servesTime = controllerServesTime(inventory);
  const ports = new Set<number>([22, UNDECLARED_PORT]);
  for (const d of tcp) for (const p of portRange(d.port) ?? []) ports.add(p);
  const sortedPorts = [...ports].sort((a, b) => a - b);

  const probes: Probe[] = [];
  for (const src of inventory.hosts) {
    for (const dst of inventory.hosts) {
      if (src.name === dst.name) continue;
      const addresses = [dst.address, ...(options.extraAddresses?.get(dst.name) ?? [])];
      for (const address of addresses) {
        for (const port of sortedPorts) {
          const rule = tcp.find((d) => {
            const [first, last] = portRange(d.port) ?? [0, -1];
            return d.host === dst.name && port >= first && port <= last &&
              (d.to.length === 0 ? address === dst.address : d.to.includes(address)) &&
              d.sources.some((s) => sourceMatches(s.address, src.address));
          });
          probes.push({
            from: src.name, fromZone: src.zone, to: dst.name, toZone: dst.zone, address, port, proto: 'tcp',
            expect: rule ? 'open' : 'blocked',
            because: rule ? `${rule.owner}/${rule.name}` : 'not declared',
          });
        }
      }
      // management plane: hosts never reach each other there
      for (const port of sortedPorts) {
        probes.push({ from: src.name, fromZone: src.zone, to: dst.name, toZone: 'mgmt', address: dst.mgmtAddress, port, proto: 'tcp', expect: 'blocked', because: 'management network carries controller traffic only' });
      }
      // hosts serve time to no one (chrony: port 0)
      probes.push({ from: src.name, fromZone: src.zone, to: dst.name, toZone: dst.zone, address: dst.address, port: NTP_PORT, proto: 'ntp', expect: 'blocked', because: 'hosts serve no time' });
    }
    // hosts -> controller: the package proxy, and the time source when the controller is one; nothing else
    for (const port of [...sortedPorts, options.aptProxyPort]) {
      const proxy = port === options.aptProxyPort;
      probes.push({ from: src.name, fromZone: src.zone, to: CONTROLLER, toZone: CONTROLLER, address: controller, port, proto: 'tcp', expect: proxy ? 'open' : 'blocked', because: proxy ? 'package proxy' : 'hosts reach the controller for packages and time only' });
    }
    probes.push({
      from: src.name, fromZone: src.zone, to: CONTROLLER, toZone: CONTROLLER, address: controller, port: NTP_PORT, proto: 'ntp',
      expect: servesTime ? 'open' : 'blocked', because: servesTime ? 'time source (network_time_sources)' : 'the controller is no time source',
    });
    // controller -> host: SSH only
    for (const port of sortedPorts) {
      probes.push({ from: CONTROLLER, fromZone: CONTROLLER, to: src.name, toZone: 'mgmt', address: src.mgmtAddress, port, proto: 'tcp', expect: port === 22 ? 'open' : 'blocked', because: port === 22 ? 'ssh from the controller' : 'management network: SSH only' });
    }
  }
  return { probes, ports: sortedPorts, notProbed };
}

function key(probe: Pick<Probe, 'from' | 'address' | 'port' | 'proto'>): string {
  return `${probe.from} ${probe.address}:${probe.port}${probe.proto === 'tcp' ? '' : `/${probe.proto}`}`;
}

function acceptedBy(accepted: ReadonlyMap<string, readonly string[]>, probe: Probe): string {
  const sources = accepted.get(`${probe.to} ${probe.address}:${String(probe.port)}`);
  return sources === undefined ? 'no listener of the check accepted it (something else answered)' : `the check's listener on ${probe.to} accepted it, from ${sources.join(', ')}`;
}

/**
 * Judges every probe by its outcome. `accepted` (optional): what the listeners accepted, "host address:port" ->
 * the source addresses; it explains each mismatch that connected.
 */
export function judge(probes: Probe[], outcomes: ReadonlyMap<string, Outcome>, notProbed: string[], ports: number[], seconds: number, accepted?: ReadonlyMap<string, readonly string[]>,
  probedAgain = { probes: 0, open: 0 }): MatrixReport {
  const report: MatrixReport = {
    checked: probes.length, allowedOpen: 0, forbiddenBlocked: 0, mismatches: [], byZones: {}, ntp: { open: 0, blocked: 0, mismatched: 0 }, notProbed, ports, seconds, probedAgain,
  };
  for (const probe of probes) {
    const got = outcomes.get(key(probe)) ?? 'not run';
    const zones = `${probe.fromZone} -> ${probe.toZone}`;
    const counts = [(report.byZones[zones] ??= { open: 0, blocked: 0, mismatched: 0 }), ...(probe.proto === 'ntp' ? [report.ntp] : [])];
    const open = got === 'open';
    const blocked = got === 'timeout' || got === 'refused' || got === 'unreachable' || got === 'closed';
    if (probe.expect === 'open' && open) {
      report.allowedOpen++;
      for (const c of counts) c.open++;
    } else if (probe.expect === 'blocked' && blocked) {
      report.forbiddenBlocked++;
      for (const c of counts) c.blocked++;
    } else {
      const by = got !== 'open' ? undefined : probe.proto === 'ntp' ? 'an NTP server answered' : accepted && acceptedBy(accepted, probe);
      report.mismatches.push({ ...probe, got, ...(by ? { acceptedBy: by } : {}) });
      for (const c of counts) c.mismatched++;
    }
  }
  return report;
}

// Runs in a host's network namespace: listens on every (address, port) nothing else holds; prints what it took,
// accepts and closes connections until its stdin closes, then prints what it accepted ([address, port, source]).
const LISTENER = String.raw`
import errno, json, selectors, socket, sys
addresses, ports = json.loads(sys.argv[1])
sel = selectors.DefaultSelector()
taken, busy = 0, 0
for a in addresses:
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((a, p))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            s.close(); busy += 1; continue
        s.listen(512); s.setblocking(False); sel.register(s, selectors.EVENT_READ); taken += 1
sel.register(sys.stdin, selectors.EVENT_READ)
print(json.dumps({"taken": taken, "busy": busy}), flush=True)
accepted = []
while True:
    for k, _ in sel.select():
        if k.fileobj is sys.stdin:
            if not sys.stdin.readline():
                print(json.dumps(accepted), flush=True)
                sys.exit(0)
        else:
            try:
                c, peer = k.fileobj.accept()
                accepted.append(list(k.fileobj.getsockname()) + [peer[0]]); c.close()
            except OSError:
                pass
`;

// Runs in a source's network namespace: connects to every (address, port) of stdin, or sends it an NTP request
// (address, port, "ntp"), prints the outcomes.
// A connect() with a timeout can return as if it had connected when the kernel ended the attempt without reporting
// an error to it (seen about once in 7,000 attempts at addresses whose ARP fails, many threads at once: the poll
// wakes on the closed socket and SO_ERROR reads 0). That is not a flow getting through: "open" is a socket that has
// its peer, and one that has none is "closed" (blocked). It once failed the zone-matrix test with two "open" flows on
// the management network, whose ports between hosts no frame can even reach.
const PROBER = String.raw`
import concurrent.futures, errno, json, os, socket, sys
targets = json.load(sys.stdin)
timeout = float(sys.argv[1])
threads = int(sys.argv[2])
def tcp(s, t):
    s.connect((t[0], t[1]))
    try:
        s.getpeername()
    except OSError:
        return "closed"
    return "open"
def ntp(s, t):
    stamp = os.urandom(8)
    s.connect((t[0], t[1]))
    s.send(bytes([0x23]) + bytes(39) + stamp)
    while True:
        data = s.recv(512)
        # a server's answer (mode 4) to this request (it echoes the request's transmit timestamp)
        if len(data) >= 48 and data[0] & 7 == 4 and data[24:32] == stamp:
            return "open"
def attempt(t):
    udp = len(t) > 2 and t[2] == "ntp"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        return ntp(s, t) if udp else tcp(s, t)
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "unreachable"
        return errno.errorcode.get(e.errno, str(e))
    finally:
        s.close()
with concurrent.futures.ThreadPoolExecutor(max_workers=min(threads, max(1, len(targets)))) as pool:
    print(json.dumps(list(pool.map(attempt, targets))))
`;

const inNetns = (netns: string | undefined, argv: string[]): string[] => (netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv);

function runPython(netns: string | undefined, script: string, args: string[], input: string): Promise<string> {
  const [cmd = '', ...rest] = inNetns(netns, ['python3', '-c', script, ...args]);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`probe in ${netns ?? 'the controller'} failed (exit ${String(code)}): ${err.trim()}`));
    });
    child.stdin.end(input);
  });
}

interface Listener {
  /** closes the listeners; what they accepted: [address, port, source address] */
  stop(): Promise<[string, number, string][]>;
}

function startListener(netns: string, addresses: string[], ports: number[]): Promise<Listener> {
  const [cmd = '', ...rest] = inNetns(netns, ['python3', '-c', LISTENER, JSON.stringify([addresses, ports])]);
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(cmd, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => { child.on('close', resolve); });
  const stop = async (): Promise<[string, number, string][]> => {
    child.stdin.end();
    const code = await exited;
    const last = out.trim().split('\n').at(-1) ?? '';
    if (code !== 0 || !last.startsWith('[')) throw new Error(`listener in ${netns} exited (${String(code)}) without its record: ${err.trim()}`);
    return JSON.parse(last) as [string, number, string][];
  };
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ stop });
    });
    child.on('error', reject);
    void exited.then((code) => { reject(new Error(`listener in ${netns} exited (${String(code)}): ${err.trim()}`)); });
  });
}

async function listenOnController(address: string, ports: number[]): Promise<Listener> {
  const servers: Server[] = [];
  const accepted: [string, number, string][] = [];
  for (const port of ports) {
    const server = createServer((socket) => {
      accepted.push([address, port, socket.remoteAddress?.replace(/^::ffff:/, '') ?? '?']);
      socket.destroy();
    });
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => { resolve(false); }); // taken by something else: it answers instead
      server.listen(port, address, () => { resolve(true); });
    });
    if (bound) servers.push(server);
  }
  return {
    stop: async () => {
      await Promise.all(servers.map((s) => new Promise((resolve) => { s.close(resolve); })));
      return accepted;
    },
  };
}

/** Addresses a host holds besides its inventory and management ones (the VIP on the active gateway). */
function extraAddresses(inventory: Inventory): Map<string, string[]> {
  const extra = new Map<string, string[]>();
  for (const host of inventory.hosts) {
    const out = execFileSync('ip', ['-n', host.name, '-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
    const held = [...out.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1] ?? '')
      .filter((a) => a !== host.address && a !== host.mgmtAddress && !a.startsWith('127.'));
    if (held.length > 0) extra.set(host.name, held);
  }
  return extra;
}

/** Runs the whole check on the lab (which must be up and provisioned). */
export async function zoneMatrix(inventory: Inventory, aptProxyPort: number): Promise<MatrixReport> {
  const started = performance.now();
  const declared = readDeclarations(inventory);
  const { probes, ports, notProbed } = planProbes(inventory, declared, { aptProxyPort, extraAddresses: extraAddresses(inventory) });
  // the check's own listeners are TCP; an NTP probe is answered by a real NTP server or by no one
  const listeners = [{ host: CONTROLLER, listener: await listenOnController(inventory.mgmt.controller, ports.filter((p) => p !== aptProxyPort)) }];
  try {
    for (const host of inventory.hosts) {
      const addresses = [...new Set(probes.filter((p) => p.to === host.name).map((p) => p.address))];
      listeners.push({ host: host.name, listener: await startListener(host.name, addresses, ports) });
    }
    const outcomes = new Map<string, Outcome>();
    // each source probes its share from its own namespace, all sources at once
    const probeAll = (list: readonly Probe[], timeoutS: number, threads: number): Promise<unknown> => {
      const bySource = new Map<string, Probe[]>();
      for (const probe of list) bySource.set(probe.from, [...(bySource.get(probe.from) ?? []), probe]);
      return Promise.all([...bySource].map(async ([from, mine]) => {
        const targets = mine.map((p) => (p.proto === 'tcp' ? [p.address, p.port] : [p.address, p.port, p.proto]));
        const out = await runPython(from === CONTROLLER ? undefined : from, PROBER, [String(timeoutS), String(threads)], JSON.stringify(targets));
        const results = JSON.parse(out) as Outcome[];
        mine.forEach((p, i) => outcomes.set(key(p), results[i] ?? 'no result'));
      }));
    };
    await probeAll(probes, CONNECT_TIMEOUT_S, PROBE_THREADS);
    const again = probeAgain(probes, outcomes);
    await probeAll(again, PROBE_AGAIN_TIMEOUT_S, 1);
    const probedAgain = { probes: again.length, open: again.filter((p) => outcomes.get(key(p)) === 'open').length };
    const accepted = new Map<string, string[]>();
    for (const { host, listener } of listeners.splice(0)) {
      for (const [address, port, source] of await listener.stop()) {
        const k = `${host} ${address}:${String(port)}`;
        accepted.set(k, [...new Set([...(accepted.get(k) ?? []), source])]);
      }
    }
    return judge(probes, outcomes, notProbed, ports, secondsSince(started), accepted, probedAgain);
  } finally {
    await Promise.allSettled(listeners.map(({ listener }) => listener.stop()));
  }
}

export function formatReport(report: MatrixReport): string {
  const rows = Object.entries(report.byZones).sort(([a], [b]) => a.localeCompare(b));
  const lines = [
    `zone matrix: ${report.checked} flows checked on ports ${report.ports.join(', ')} in ${report.seconds} s`,
    `  allowed and open:      ${report.allowedOpen}`,
    `  forbidden and blocked: ${report.forbiddenBlocked}`,
    `  mismatches:            ${report.mismatches.length}`,
  ];
  // the mismatches first: a failed test's message may be all a reader of a long log gets to see
  for (const m of report.mismatches.slice(0, 50)) {
    lines.push(`  MISMATCH ${m.from} -> ${m.to} ${m.address}:${m.port}${m.proto === 'tcp' ? '' : `/${m.proto}`}: expected ${m.expect} (${m.because}), got ${m.got}${m.acceptedBy === undefined ? '' : `: ${m.acceptedBy}`}`);
  }
  if (report.mismatches.length > 50) lines.push(`  ... and ${report.mismatches.length - 50} more`);
  if (report.probedAgain.probes > 0) {
    lines.push(`  allowed flows that timed out among the others, probed again alone (${String(PROBE_AGAIN_TIMEOUT_S)} s): ${String(report.probedAgain.probes)}, of which ${String(report.probedAgain.open)} connected`);
  }
  lines.push(
    '',
    '  zones            open  blocked  mismatched',
    ...rows.map(([zones, c]) => `  ${zones.padEnd(16)} ${String(c.open).padStart(4)}  ${String(c.blocked).padStart(7)}  ${String(c.mismatched).padStart(10)}`),
  );
  lines.push(`  time (NTP): ${report.ntp.open} open, ${report.ntp.blocked} blocked, ${report.ntp.mismatched} mismatched`);
  if (report.notProbed.length > 0) lines.push('', `  not probed: ${report.notProbed.join(', ')}`);
  return lines.join('\n');
}
