// The lab's time source: the operator's NTP server, played by the controller. When the inventory names the
// controller among network_time_sources, `up` starts chronyd on the controller's management address, serving the
// controller's own clock (`local`) to the management subnet only; the hosts' chrony (roles/chrony) follows it.
// chronyd runs with -x: it never touches this machine's clock. It comes from Debian's chrony package, unpacked by
// the bootstrap (installing the package would replace this machine's own time daemon). `down` stops it with the
// other lab processes (its command line names the lab's state directory).
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Inventory } from '../lib/inventory.ts';
import { stateDir } from './state.ts';

export const NTP_PORT = 123;
const labDir = join(stateDir, 'time-source');
const chronyd = resolve(import.meta.dirname, '../../.toolchain/chrony/root/usr/sbin/chronyd');

/** Whether the lab's controller is one of the inventory's time sources (then the lab serves time on it). */
export const controllerServesTime = (inventory: Inventory): boolean => inventory.timeSources.includes(inventory.mgmt.controller);

export interface TimeServer {
  address: string;
  port: number;
  /** the clients' network */
  allow: string;
  /** where its configuration, pid file and log go */
  dir: string;
}

/** chronyd's configuration: this machine's clock, at a stratum clients accept, on one address to one network. */
export function timeSourceConfig(server: TimeServer): string {
  return [
    '# the lab\'s time source (zx-scripts/lab/time-source.ts): this machine\'s clock, to the management network only',
    'local stratum 8',
    `allow ${server.allow}`,
    `bindaddress ${server.address}`,
    `port ${server.port}`,
    '# no chronyc: neither the UDP command port nor the Unix socket',
    'cmdport 0',
    'bindcmdaddress /',
    `pidfile ${join(server.dir, 'chronyd.pid')}`,
    '',
  ].join('\n');
}

/** Starts the lab's time source on the controller's management address (see the top of this file); returns its pid. */
export function startTimeSource(inventory: Inventory): Promise<number> {
  return startTimeServer({ address: inventory.mgmt.controller, port: NTP_PORT, allow: inventory.mgmt.subnet.text, dir: labDir });
}

/** Starts chronyd as a time server and waits until it answers NTP; returns its pid. */
export async function startTimeServer(server: TimeServer): Promise<number> {
  if (!existsSync(chronyd)) throw new Error(`${chronyd} is missing; run: npm run bootstrap`);
  const { dir } = server;
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'chrony.conf');
  writeFileSync(config, timeSourceConfig(server));
  // -x: never adjust this machine's clock; -u nobody: it drops root once its port is bound; it forks and returns
  const started = spawnSync(chronyd, ['-x', '-u', 'nobody', '-f', config, '-L', '0', '-l', join(dir, 'chronyd.log')], { encoding: 'utf8' });
  if (started.status !== 0) {
    throw new Error(`chronyd did not start (exit ${String(started.status)}): ${started.stderr.trim()}; see ${join(dir, 'chronyd.log')}`);
  }
  const deadline = Date.now() + 10_000;
  while ((await ntpQuery(server.address, server.port)) === undefined) {
    if (Date.now() > deadline) throw new Error(`chronyd does not answer NTP on ${server.address}:${server.port}; see ${join(dir, 'chronyd.log')}`);
    await sleep(100);
  }
  return Number(readFileSync(join(dir, 'chronyd.pid'), 'utf8'));
}

export interface NtpAnswer {
  stratum: number;
  /** the server's clock minus ours, in milliseconds (RFC 5905's offset, from the four timestamps) */
  offsetMs: number;
}

const NTP_EPOCH_OFFSET_S = 2_208_988_800; // 1900-01-01 to 1970-01-01

function ntpTimestamp(buffer: Buffer, at: number): number {
  return (buffer.readUInt32BE(at) - NTP_EPOCH_OFFSET_S) * 1000 + (buffer.readUInt32BE(at + 4) / 2 ** 32) * 1000;
}

/** One NTP client request (version 4, mode 3); the server's answer, or undefined when none came within the timeout. */
export function ntpQuery(address: string, port = NTP_PORT, timeoutMs = 1000): Promise<NtpAnswer | undefined> {
  return new Promise((done) => {
    const socket = createSocket('udp4');
    const request = Buffer.alloc(48);
    request[0] = (4 << 3) | 3;
    const sent = Date.now();
    const sentSeconds = Math.floor(sent / 1000) + NTP_EPOCH_OFFSET_S;
    request.writeUInt32BE(sentSeconds, 40); // the transmit timestamp, which the answer must echo
    const finish = (answer: NtpAnswer | undefined): void => {
      clearTimeout(timer);
      socket.close();
      done(answer);
    };
    const timer = setTimeout(() => { finish(undefined); }, timeoutMs);
    socket.on('error', () => { finish(undefined); });
    socket.on('message', (reply) => {
      const received = Date.now();
      // a server's answer: mode 4, echoing our transmit timestamp as its originate timestamp
      if (reply.length < 48 || ((reply[0] ?? 0) & 7) !== 4 || reply.readUInt32BE(24) !== sentSeconds) return;
      const t2 = ntpTimestamp(reply, 32);
      const t3 = ntpTimestamp(reply, 40);
      finish({ stratum: reply[1] ?? 0, offsetMs: ((t2 - sent) + (t3 - received)) / 2 });
    });
    socket.send(request, port, address, (error) => { if (error) finish(undefined); });
  });
}
