// Runs inside an app host's network namespace (`ip netns exec app1 ...`, see pg.ts), where the services will run:
// it reaches PostgreSQL through that host's HAProxy exactly as the order service will, with a service identity's
// client certificate from the lab PKI. One JSON document (or, for `load`, one JSON line per write) on stdout.
//
//   load --run ID [--writers N] [--interval-ms MS]   order-creation transactions with client-made ids until SIGTERM
//   audit --run ID                                  stdin {"ids": [...]}: prints which of them are in PostgreSQL
//   bench [--clients N] [--seconds S] [--warmup S]   order-creation transactions as fast as N connections go
//   cluster                                         Patroni's view of the cluster (GET /cluster on any member)
//   query --identity ID --database DB [--port P] [--scope S] [--customer C] [--no-cert] [--autocommit] SQL
//                                                   one statement as that identity; rows or the error
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { actAs, CommitOutcomeUnknown, createOrder } from '@oms/order-service/db/create-order';
import { latencyPercentiles, round1 } from '../lib/stats.ts';

export interface AgentConfig {
  /** lab PKI folder on the controller (trust-bundle.pem, clients/<identity>/client.{crt,key}) */
  pki: string;
  /** names and addresses of the Patroni members: the server certificate must be one of theirs */
  members: { name: string; address: string }[];
  haproxy: { rw: number; ro: number };
  patroniPort: number;
}

export type WriteOutcome = 'ok' | 'failed' | 'unknown';

export interface WriteEvent {
  id: string;
  /** epoch ms when the transaction started and when its outcome was known */
  start: number;
  end: number;
  outcome: WriteOutcome;
  error?: string;
}

const config = JSON.parse(process.env['OMS_AGENT_CONFIG'] ?? '{}') as AgentConfig;
const TIMEOUT_MS = 3000;

function connection(identity: string | null, database: string, port: number): pg.ClientConfig {
  const ca = readFileSync(`${config.pki}/trust-bundle.pem`, 'utf8');
  return {
    host: '127.0.0.1',
    port,
    database,
    user: identity === null ? 'order_service' : identity.replaceAll('-', '_'),
    connectionTimeoutMillis: TIMEOUT_MS,
    query_timeout: TIMEOUT_MS,
    statement_timeout: TIMEOUT_MS,
    application_name: 'oms-drill',
    ssl: {
      ca,
      ...(identity === null ? {} : {
        cert: readFileSync(`${config.pki}/clients/${identity}/client.crt`, 'utf8'),
        key: readFileSync(`${config.pki}/clients/${identity}/client.key`, 'utf8'),
      }),
      rejectUnauthorized: true,
      // HAProxy forwards to whichever member leads: its certificate must be valid for one of the members
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        const ok = config.members.some((m) => checkServerIdentity(m.name, cert) === undefined);
        return ok ? undefined : new Error(`the server certificate (${String(cert.subject.CN)}) is not one of a PostgreSQL member`);
      },
    },
  };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function load(runId: string, writers: number, intervalMs: number): Promise<void> {
  let stopping = false;
  process.on('SIGTERM', () => { stopping = true; });
  process.on('SIGINT', () => { stopping = true; });
  const emit = (event: WriteEvent): void => { process.stdout.write(JSON.stringify(event) + '\n'); };
  const products = Array.from({ length: writers }, (_, i) => `DRILL-${i + 1}`);

  const seed = async (): Promise<void> => {
    for (;;) {
      const client = new pg.Client(connection('order-service', 'orders', config.haproxy.rw));
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('BEGIN');
        await actAs(client, 'staff');
        await client.query(
          `INSERT INTO oms.products (id, name, category, price_cents, stock)
           SELECT id, 'Drill widget ' || id, 'drill', 1000, 1000000000 FROM unnest($1::text[]) AS id
           ON CONFLICT (id) DO NOTHING`, [products]);
        await client.query('COMMIT');
        return;
      } catch (error) {
        process.stderr.write(`seeding drill products: ${message(error)}; retrying\n`);
        await sleep(500);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  };
  await seed();

  const writer = async (index: number): Promise<void> => {
    let client: pg.Client | undefined;
    while (!stopping) {
      const id = randomUUID();
      const start = Date.now();
      try {
        if (!client) {
          client = new pg.Client(connection('order-service', 'orders', config.haproxy.rw));
          client.on('error', () => undefined);
          await client.connect();
        }
        const result = await createOrder(client, {
          orderId: id,
          customerId: `drill-${runId}`,
          customerEmail: `drill-${runId}@drills.oms.example`,
          idempotencyKey: id,
          requestSha256: createHash('sha256').update(id).digest('hex'),
          lines: [{ productId: products[index] ?? 'DRILL-1', quantity: 1 }],
        });
        emit(result.kind === 'created'
          ? { id, start, end: Date.now(), outcome: 'ok' }
          : { id, start, end: Date.now(), outcome: 'failed', error: `unexpected ${result.kind}` });
        // a restore to before the load's start took its products with it (pg-cluster-loss: they were in the WAL the
        // repository had not received yet): this write failed, and the next ones get them back
        if (result.kind === 'unknown_product') {
          process.stderr.write(`drill product ${products[index] ?? 'DRILL-1'} is gone (a restore discarded it): seeding the drill products again\n`);
          await seed();
        }
      } catch (error) {
        // the order's statement without an answer (or with one that is not a refusal) leaves the outcome open; a refusal,
        // or a failure to connect, means it was never placed
        const outcome: WriteOutcome = error instanceof CommitOutcomeUnknown ? 'unknown' : 'failed';
        emit({ id, start, end: Date.now(), outcome, error: message(error) });
        await client?.end().catch(() => undefined);
        client = undefined;
        await sleep(100);
      }
      if (intervalMs > 0) await sleep(intervalMs);
    }
    await client?.end().catch(() => undefined);
  };
  await Promise.all(Array.from({ length: writers }, (_, i) => writer(i)));
}

/**
 * The order-creation transaction as fast as `clients` connections can run it for `seconds`, on a catalog of 200
 * products (1-3 lines an order, so orders contend on stock rows as real ones do). Prints TPS and latency percentiles.
 */
async function bench(clients: number, seconds: number, warmupSeconds: number): Promise<void> {
  const products = Array.from({ length: 200 }, (_, i) => `BENCH-${String(i + 1).padStart(3, '0')}`);
  const seedClient = new pg.Client(connection('order-service', 'orders', config.haproxy.rw));
  await seedClient.connect();
  await seedClient.query('BEGIN');
  await actAs(seedClient, 'staff');
  await seedClient.query(
    `INSERT INTO oms.products (id, name, category, price_cents, stock)
     SELECT id, 'Bench item ' || id, 'bench', 500 + length(id), 1000000000 FROM unnest($1::text[]) AS id
     ON CONFLICT (id) DO NOTHING`, [products]);
  await seedClient.query('COMMIT');
  await seedClient.end();

  const runId = `bench-${Date.now().toString(36)}`;
  const latencies: number[] = [];
  let errors = 0;
  const started = Date.now();
  const measureFrom = started + warmupSeconds * 1000;
  const until = measureFrom + seconds * 1000;
  const worker = async (): Promise<void> => {
    const client = new pg.Client(connection('order-service', 'orders', config.haproxy.rw));
    await client.connect();
    try {
      while (Date.now() < until) {
        const id = randomUUID();
        const lines = Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () => ({
          productId: products[Math.floor(Math.random() * products.length)] ?? 'BENCH-001', quantity: 1 }));
        const distinct = [...new Map(lines.map((l) => [l.productId, l])).values()];
        const t0 = performance.now();
        try {
          await createOrder(client, {
            orderId: id, customerId: `${runId}-${Math.floor(Math.random() * 1000)}`, customerEmail: `bench-${runId}@drills.oms.example`, idempotencyKey: id,
            requestSha256: createHash('sha256').update(id).digest('hex'), lines: distinct,
          });
          if (Date.now() >= measureFrom) latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: clients }, () => worker()));
  console.log(JSON.stringify({
    clients, seconds, transactions: latencies.length, errors, tps: round1(latencies.length / seconds), ms: latencyPercentiles(latencies),
  }));
}

async function audit(runId: string): Promise<void> {
  const input = JSON.parse(readFileSync(0, 'utf8')) as { ids: string[] };
  const client = new pg.Client(connection('order-service', 'orders', config.haproxy.rw));
  await client.connect();
  const present: string[] = [];
  try {
    await client.query('BEGIN');
    await actAs(client, 'staff');
    for (let i = 0; i < input.ids.length; i += 5000) {
      const { rows } = await client.query<{ id: string }>(
        'SELECT id FROM oms.orders WHERE customer_id = $1 AND id = ANY($2::uuid[])', [`drill-${runId}`, input.ids.slice(i, i + 5000)]);
      present.push(...rows.map((r) => r.id));
    }
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM oms.orders WHERE customer_id = $1', [`drill-${runId}`]);
    await client.query('COMMIT');
    console.log(JSON.stringify({ present, total: Number(rows[0]?.n ?? 0) }));
  } finally {
    await client.end();
  }
}

/** GET with the order-service identity's certificate (the Patroni REST API requires a client certificate). */
function getJson(url: string): Promise<unknown> {
  const ca = readFileSync(`${config.pki}/trust-bundle.pem`, 'utf8');
  const cert = readFileSync(`${config.pki}/clients/order-service/client.crt`, 'utf8');
  const key = readFileSync(`${config.pki}/clients/order-service/client.key`, 'utf8');
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, cert, key, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        try { resolve(JSON.parse(body)); } catch (error) { reject(error instanceof Error ? error : new Error(String(error))); }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function cluster(): Promise<void> {
  const errors: string[] = [];
  for (const member of config.members) {
    try {
      console.log(JSON.stringify(await getJson(`https://${member.address}:${config.patroniPort}/cluster`)));
      return;
    } catch (error) {
      errors.push(`${member.name}: ${message(error)}`);
    }
  }
  console.log(JSON.stringify({ error: errors.join('; ') }));
}

async function query(args: Map<string, string>, sql: string): Promise<void> {
  const identity = args.has('no-cert') ? null : (args.get('identity') ?? 'order-service');
  const port = Number(args.get('port') ?? config.haproxy.rw);
  const client = new pg.Client(connection(identity, args.get('database') ?? 'orders', port));
  client.on('error', () => undefined);
  try {
    await client.connect();
    const transaction = !args.has('autocommit');
    if (transaction) await client.query('BEGIN');
    if (args.has('scope')) await actAs(client, args.get('scope') as 'customer' | 'staff' | 'system', args.get('customer') ?? '');
    // several statements give one result each: the last one's rows are the answer
    const result = (await client.query(sql)) as pg.QueryResult | pg.QueryResult[];
    if (transaction) await client.query('COMMIT');
    console.log(JSON.stringify({ rows: (Array.isArray(result) ? result.at(-1) : result)?.rows ?? [] }));
  } catch (error) {
    console.log(JSON.stringify({ error: message(error), code: (error as { code?: string }).code ?? null }));
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const args = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] ?? '';
    if (a === '--no-cert' || a === '--autocommit') args.set(a.slice(2), '');
    else if (a.startsWith('--')) args.set(a.slice(2), rest[++i] ?? '');
    else positional.push(a);
  }
  switch (command) {
    case 'load':
      return load(args.get('run') ?? 'adhoc', Number(args.get('writers') ?? 4), Number(args.get('interval-ms') ?? 20));
    case 'bench':
      return bench(Number(args.get('clients') ?? 8), Number(args.get('seconds') ?? 15), Number(args.get('warmup') ?? 2));
    case 'audit':
      return audit(args.get('run') ?? 'adhoc');
    case 'cluster':
      return cluster();
    case 'query':
      return query(args, positional.join(' '));
    default:
      throw new Error(`pg-agent: unknown command '${command ?? ''}'`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`pg-agent: ${message(error)}\n`);
  process.exit(1);
});
