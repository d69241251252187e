// npm run lab -- <command>: the single-machine lab of the OMS kit.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { runCli, UsageError } from '../lib/cli.ts';
import { loadInventory, type Inventory } from '../lib/inventory.ts';
import { findNspawn, hostInit } from './hosts.ts';
import { formatReport, zoneMatrix } from './zone-matrix.ts';
import { zoneMatrixSvg } from './zone-matrix-svg.ts';
import { GATEWAY_AGENT, runAgent } from '../drills/agent.ts';
import type { Answer } from '../drills/gateway-agent.ts';
import { emailsForOrder, type SinkMessage } from '../drills/mail.ts';
import { DRILL_PRODUCT, LAB_CATALOG } from './catalog.ts';
import { defaultInventory, down, killHost, labSettings, startHost, repoRoot, runPlaybook, sshArgs, status, up, type LabStatus } from './lab.ts';
import { timeStamp } from '../lib/run-id.ts';

const USAGE = `usage: npm run lab -- <command> [options]

commands:
  up [--no-provision]     build the lab from the inventory, boot every host, run ansible/site.yml (the whole
                          stack) and put the demo catalog through the API at the VIP
  down                    stop every host and remove every namespace, bridge, mount and process of the lab
  status [--json]         what runs, its systemd state and memory (exit 3 when the lab is not up)
  exec HOST -- CMD...     run a command inside a host (no SSH needed)
  ssh HOST [SSH ARGS]     open SSH to a host over the management network, as Ansible does
  kill HOST               cut a host's power: every process of it dies at once (disk and network stay)
  start HOST              boot a killed host again on its own disk; returns when systemd runs and SSH answers
  zone-matrix [--json]    try every declared and forbidden flow between the hosts; exit 1 on any mismatch
  order [PRODUCT]         place one order at the VIP as a customer from the client host (default product
                          ${DRILL_PRODUCT}) and wait for its emails at the mail sink

options:
  --inventory DIR         the lab inventory (default: inventories/lab)`;

const log = (line: string): void => { console.log(`lab: ${line}`); };

async function main(argv: string[]): Promise<number> {
  const sep = argv.indexOf('--');
  const own = sep === -1 ? argv : argv.slice(0, sep);
  const rest = sep === -1 ? [] : argv.slice(sep + 1);
  let inventoryDir = defaultInventory;
  const words: string[] = [];
  const flags = new Set<string>();
  for (let i = 0; i < own.length; i++) {
    const arg = own[i] ?? '';
    if (arg === '--inventory') {
      const value = own[++i];
      if (!value) throw new UsageError('--inventory needs a folder');
      inventoryDir = value;
    } else if (arg === '-h' || arg === '--help' || arg === 'help') {
      console.log(USAGE);
      return 0;
    } else if (arg.startsWith('--')) {
      flags.add(arg);
    } else {
      words.push(arg);
    }
  }
  const [command, ...args] = words;
  // an option no command takes is named as such, whatever the command (or none)
  const unknownToAll = [...flags].filter((f) => !['--no-provision', '--json'].includes(f));
  if (unknownToAll.length > 0) throw new UsageError(`unknown option ${unknownToAll.join(', ')}`);
  const allow = (...known: string[]): void => {
    const unknown = [...flags].filter((f) => !known.includes(f));
    if (unknown.length > 0) throw new UsageError(`${command ?? ''}: unknown option ${unknown.join(', ')}`);
  };
  const noArgs = (): void => {
    if (args.length > 0) throw new UsageError(`${command ?? ''}: unexpected argument ${args.join(' ')}`);
  };

  switch (command) {
    case 'up': {
      allow('--no-provision');
      noArgs();
      const result = await up(inventoryDir, log);
      if (!result.reused) {
        log(`lab ready in ${result.seconds.total} s (image ${result.seconds.image} s${result.imageBuilt ? ', built' : ', cached'}, ` +
          `networks ${result.seconds.network} s, hosts ${result.seconds.boot} s)`);
      }
      if (!flags.has('--no-provision')) {
        log('provisioning: ansible-playbook ansible/site.yml');
        const code = await runPlaybook(inventoryDir, 'ansible/site.yml');
        if (code !== 0) {
          log(`site.yml failed (exit ${code}); the hosts stay up for inspection (npm run lab -- status / ssh HOST)`);
          return code;
        }
        const { statuses } = await runAgent<{ statuses: Record<string, number> }>(GATEWAY_AGENT, loadInventory(inventoryDir), 'client', ['seed']);
        log(`demo catalog put through the API at the VIP by a staff user: ${Object.keys(statuses).join(', ')} (zx-scripts/lab/catalog.ts)`);
      }
      printStatus(await status(inventoryDir), loadInventory(inventoryDir));
      return 0;
    }
    case 'down': {
      allow();
      noArgs();
      await down(log);
      log('lab is down; nothing of it is left on this machine');
      return 0;
    }
    case 'status': {
      allow('--json');
      noArgs();
      const result = await status(inventoryDir);
      if (flags.has('--json')) console.log(JSON.stringify(result, null, 2));
      else printStatus(result, loadInventory(inventoryDir));
      return result.up ? 0 : 3;
    }
    case 'exec': {
      allow();
      const [host] = args;
      if (!host || args.length > 1 || rest.length === 0) throw new UsageError('exec HOST -- CMD...');
      const init = initOf(inventoryDir, host);
      return spawnSync('nsenter', ['--target', String(init), '--all', '--', ...rest], { stdio: 'inherit' }).status ?? 1;
    }
    case 'ssh': {
      allow();
      const [name] = args;
      if (!name || args.length > 1) throw new UsageError('ssh HOST [-- SSH ARGS]');
      const host = hostOf(loadInventory(inventoryDir), name);
      return spawnSync('ssh', [...sshArgs(host, { interactive: true }), ...rest], { stdio: 'inherit' }).status ?? 1;
    }
    case 'kill': {
      allow();
      const [name] = args;
      if (!name || args.length > 1) throw new UsageError('kill HOST');
      hostOf(loadInventory(inventoryDir), name);
      await killHost(inventoryDir, name);
      log(`${name}: power cut (every process killed); start it again with: npm run lab -- start ${name}`);
      return 0;
    }
    case 'start': {
      allow();
      const [name] = args;
      if (!name || args.length > 1) throw new UsageError('start HOST');
      hostOf(loadInventory(inventoryDir), name);
      const { seconds } = await startHost(inventoryDir, name);
      log(`${name}: booted, systemd running and SSH answering (${seconds} s)`);
      return 0;
    }
    case 'zone-matrix': {
      allow('--json');
      noArgs();
      const inventory = loadInventory(inventoryDir);
      if (!(await status(inventoryDir)).up) throw new Error('the lab is not up (npm run lab -- up)');
      const report = await zoneMatrix(inventory, labSettings(inventory).aptProxyPort);
      // the picture beside the figures: reports/zone-matrix/<time>.svg
      const picture = join(repoRoot, 'reports', 'zone-matrix', `${timeStamp()}.svg`);
      mkdirSync(dirname(picture), { recursive: true });
      writeFileSync(picture, zoneMatrixSvg(report));
      if (flags.has('--json')) console.log(JSON.stringify({ ...report, picture }, null, 2));
      else console.log(`${formatReport(report)}\n  picture: ${picture}`);
      return report.mismatches.length === 0 ? 0 : 1;
    }
    case 'order': {
      allow();
      const [product = DRILL_PRODUCT, ...extra] = args;
      if (extra.length > 0) throw new UsageError('order [PRODUCT]');
      if (!LAB_CATALOG.some((p) => p.id === product)) {
        throw new UsageError(`unknown product '${product}' (the demo catalog: ${LAB_CATALOG.map((p) => p.id).join(', ')})`);
      }
      return placeOrder(loadInventory(inventoryDir), product);
    }
    case undefined:
      throw new UsageError('no command given');
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

/** One customer's order at the VIP, and the emails its events become at the lab's email provider. */
async function placeOrder(inventory: Inventory, product: string): Promise<number> {
  if (!(await status(inventory.dir)).up) throw new Error('the lab is not up (npm run lab -- up)');
  const placed = Date.now();
  const answer = await runAgent<Answer>(GATEWAY_AGENT, inventory, 'client', ['order', '--product', product, '--subject', 'ada']);
  log(`POST /api/v1/orders at ${inventory.gatewayName ?? ''} (the VIP ${inventory.gatewayVip ?? ''}): ${String(answer.status)}, request id ${String(answer.headers['x-request-id'])}`);
  console.log(answer.body);
  if (answer.status !== 201) return 1;
  const order = JSON.parse(answer.body) as { id: string; status: string };
  // one email per event: order.created, then the payment's outcome (order.confirmed)
  let emails: SinkMessage[] = [];
  for (let i = 0; i < 60 && emails.length < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    emails = await emailsForOrder(inventory, order.id);
  }
  for (const e of emails) log(`email at the provider after ${String(Date.parse(e.at) - placed)} ms: to ${e.to.join(', ')}: "${e.subject ?? ''}" (${e.eventType ?? ''})`);
  if (emails.length < 2) {
    log(`order ${order.id} is ${order.status}, but ${String(emails.length)} of its 2 emails arrived within 30 s`);
    return 1;
  }
  return 0;
}

function hostOf(inventory: Inventory, name: string) {
  const host = inventory.hosts.find((h) => h.name === name);
  if (!host) throw new UsageError(`unknown host '${name}' (hosts: ${inventory.hosts.map((h) => h.name).join(', ')})`);
  return host;
}

function initOf(inventoryDir: string, name: string): number {
  hostOf(loadInventory(inventoryDir), name);
  const nspawn = findNspawn(name);
  const init = nspawn === undefined ? undefined : hostInit(nspawn);
  if (init === undefined) throw new Error(`host ${name} is not running (npm run lab -- up)`);
  return init;
}

function printStatus(s: LabStatus, inventory: Inventory): void {
  const rows = s.hosts.map((h) => [h.name, h.zone, h.address, h.mgmtAddress, h.systemd, `${h.memoryMiB}`, h.groups.join(',')]);
  const header = ['HOST', 'ZONE', 'ADDRESS', 'MGMT (ssh)', 'SYSTEMD', 'MEM MiB', 'GROUPS'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  console.log([line(header), ...rows.map(line)].join('\n'));
  const settings = labSettings(inventory);
  console.log(`
lab ${s.up ? 'UP' : 'NOT UP'}${s.readyAt ? ` since ${s.readyAt}` : ''}; ${s.hosts.filter((h) => h.running).length}/${s.hosts.length} hosts running, ${s.memoryMiB} MiB in all
zones: ${inventory.zones.map((z) => `${z.name} ${z.subnet.text}`).join(', ')}; gateway VIP ${inventory.gatewayVip ?? '-'}
management ${inventory.mgmt.subnet.text}: controller ${inventory.mgmt.controller}, apt proxy :${settings.aptProxyPort} ${s.aptProxy ? 'up' : 'DOWN'}${s.timeSource === undefined ? '' : `, time source (NTP) ${s.timeSource ? 'up' : 'DOWN'}`}
reach a host:  npm run lab -- ssh HOST   |   npm run lab -- exec HOST -- CMD
ansible:       npx ansible all -i ${relative(repoRoot, inventory.dir) || inventory.dir} -m ansible.builtin.ping`);
}

runCli('lab', USAGE, main);
