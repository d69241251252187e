// Runs inside an app host's network namespace (`ip netns exec app1 ...`, see agent.ts), where the services will
// run: it reaches the brokers' CLIENT listener (SASL_SSL, SCRAM-SHA-512, a client certificate of the kit's CA) the
// way the order and notification services will. One JSON document (or, for `load`, one JSON line per event) on stdout.
//
//   load --run ID [--producers N] [--interval-ms MS]
//       idempotent producers (acks=all) write messages with client-made ids to the drill topic while a consumer group
//       reads them; one line per write ({"kind":"write",...}); on SIGTERM the producers stop, the consumer catches up
//       (at most 60 s) and a last line lists the ids it consumed ({"kind":"consumed","ids":[...],"duplicates":N});
//       its first line gives the offsets it started from ({"kind":"start","offsets":[{"partition":0,"offset":"12"},...]})
//   read --run ID --from OFFSETS_JSON
//       reads the drill topic again from those offsets to its end as it is now (after the heal), with a consumer of
//       its own: {"ids":[...],"messages":N} (the run's ids, and every message read)
//   probe --action produce|consume|metadata [--topic T] [--group G] [--user U] [--password P] [--no-sasl] [--no-cert]
//       one client operation with those credentials: {"ok":true} or {"ok":false,"error":"...","type":"..."}
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Consumer, type KafkaConfig, type Producer } from 'kafkajs';
import { emit, emitLast, message, required, runAgentCommands } from './agent-io.ts';

export interface KafkaAgentConfig {
  /** lab PKI folder on the controller (trust-bundle.pem, clients/<identity>/client.{crt,key}) */
  pki: string;
  /** the brokers' CLIENT listeners, address:port */
  brokers: string[];
  /** the client certificate presented to the brokers (a service identity of the app hosts) */
  certIdentity: string;
  /** the drill topic, and the SCRAM user the drills write and read it as */
  topic: string;
  user: string;
  password: string;
}

const config = JSON.parse(process.env['OMS_AGENT_CONFIG'] ?? '{}') as KafkaAgentConfig;
const REQUEST_TIMEOUT_MS = 5000;

interface Credentials {
  user: string | null;
  password: string;
  cert: boolean;
}

function client(clientId: string, creds: Credentials, retries = 3): Kafka {
  const ssl = {
    ca: readFileSync(`${config.pki}/trust-bundle.pem`, 'utf8'),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3' as const,
    ...(creds.cert ? {
      cert: readFileSync(`${config.pki}/clients/${config.certIdentity}/client.crt`, 'utf8'),
      key: readFileSync(`${config.pki}/clients/${config.certIdentity}/client.key`, 'utf8'),
    } : {}),
  };
  const settings: KafkaConfig = {
    clientId,
    brokers: config.brokers,
    ssl,
    connectionTimeout: 3000,
    authenticationTimeout: 5000,
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: { retries, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.NOTHING,
  };
  if (creds.user !== null) settings.sasl = { mechanism: 'scram-sha-512', username: creds.user, password: creds.password };
  return new Kafka(settings);
}

/**
 * Puts a new group's consumer, joined (run() returns once it is), at the given offsets and commits them for the group,
 * so a rejoin later (a broker killed, the coordinator moved) resumes from there too. admin.setOffsets would do the
 * same with a throwaway consumer of its own: a second join and a fetch that waits on an idle topic, 8 s on the lab.
 */
async function startAt(consumer: Consumer, topic: string, offsets: { partition: number; offset: string }[]): Promise<void> {
  for (const { partition, offset } of offsets) consumer.seek({ topic, partition, offset });
  await consumer.commitOffsets(offsets.map(({ partition, offset }) => ({ topic, partition, offset })));
}

async function load(runId: string, producers: number, intervalMs: number): Promise<void> {
  let stopping = false;
  process.on('SIGTERM', () => { stopping = true; });
  process.on('SIGINT', () => { stopping = true; });
  const creds: Credentials = { user: config.user, password: config.password, cert: true };
  const kafka = client(`oms-drill-${runId}`, creds);
  const topic = config.topic;
  const groupId = `drill-live-${runId}`;

  // The consumer group starts at the topic's current end: earlier drills' messages are not this run's.
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  const startOffsets = ends.map((p) => ({ partition: p.partition, offset: p.high }));
  await admin.disconnect();

  const acknowledged = new Set<string>();
  const consumed = new Set<string>();
  let duplicates = 0;
  // more retries than the producers: the first group of a new cluster waits for __consumer_offsets to be created
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000, maxWaitTimeInMs: 250, retry: { retries: 10 } });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: false });
  await consumer.run({
    eachMessage: ({ message: m }) => {
      const body = JSON.parse(m.value?.toString() ?? '{}') as { id?: string; run?: string };
      if (body.run === runId && body.id) {
        if (consumed.has(body.id)) duplicates += 1;
        consumed.add(body.id);
      }
      return Promise.resolve();
    },
  });
  await startAt(consumer, topic, startOffsets);
  emit({ kind: 'start', offsets: startOffsets });

  // One producer per loop. After a failed send the producer is replaced (a new producer id), as the Java client
  // does: an idempotent producer's sequence numbers are uncertain after a send whose outcome is unknown.
  const newProducer = async (): Promise<Producer> => {
    const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await p.connect();
    return p;
  };
  const writer = async (): Promise<void> => {
    let producer: Producer | null = null;
    while (!stopping) {
      const id = randomUUID();
      const start = Date.now();
      try {
        producer ??= await newProducer();
        await producer.send({ topic, acks: -1, timeout: REQUEST_TIMEOUT_MS, messages: [{ key: id, value: JSON.stringify({ id, run: runId }) }] });
        acknowledged.add(id);
        emit({ kind: 'write', id, start, end: Date.now(), outcome: 'ok' });
      } catch (error) {
        // a send that failed after it left may still have been appended: unknown, not failed
        emit({ kind: 'write', id, start, end: Date.now(), outcome: 'unknown', error: message(error) });
        const old = producer;
        producer = null;
        await old?.disconnect().catch(() => undefined);
      }
      await sleep(intervalMs);
    }
    await producer?.disconnect().catch(() => undefined);
  };
  await Promise.all(Array.from({ length: producers }, () => writer()));

  const deadline = Date.now() + 60_000;
  while ([...acknowledged].some((id) => !consumed.has(id)) && Date.now() < deadline) await sleep(250);
  await consumer.disconnect().catch(() => undefined);
  await emitLast({ kind: 'consumed', ids: [...consumed], duplicates });
}

/**
 * The topic read again after the heal: from the run's start offsets to each partition's end now, by a consumer group
 * of its own, so the audit sees what the brokers hold once the cluster is whole, not what the live consumer saw.
 */
async function read(runId: string, from: { partition: number; offset: string }[]): Promise<void> {
  const kafka = client(`oms-drill-audit-${runId}`, { user: config.user, password: config.password, cert: true }, 10);
  const topic = config.topic;
  const groupId = `drill-audit-${runId}-${randomUUID()}`;
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  await admin.disconnect();
  const next = new Map(from.map((p) => [p.partition, BigInt(p.offset)]));
  const done = (): boolean => [...ends].every(([partition, end]) => (next.get(partition) ?? 0n) >= end);
  const ids = new Set<string>();
  let messages = 0;
  if (!done()) {
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000, maxWaitTimeInMs: 250, retry: { retries: 10 } });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachMessage: ({ partition, message: m }) => {
        messages += 1;
        next.set(partition, BigInt(m.offset) + 1n);
        const body = JSON.parse(m.value?.toString() ?? '{}') as { id?: string; run?: string };
        if (body.run === runId && body.id) ids.add(body.id);
        return Promise.resolve();
      },
    });
    await startAt(consumer, topic, from);
    const deadline = Date.now() + 120_000;
    while (!done() && Date.now() < deadline) await sleep(200);
    await consumer.disconnect();
    if (!done()) throw new Error(`read the drill topic up to ${JSON.stringify(Object.fromEntries([...next].map(([p, o]) => [p, String(o)])))}, not to its end ${JSON.stringify(Object.fromEntries([...ends].map(([p, o]) => [p, String(o)])))}, in 120 s`);
  }
  await emitLast({ ids: [...ids], messages });
}

async function probe(args: Map<string, string | true>): Promise<void> {
  const action = String(args.get('action') ?? '');
  const topic = String(args.get('topic') ?? config.topic);
  const user = args.has('no-sasl') ? null : String(args.get('user') ?? config.user);
  const password = String(args.get('password') ?? config.password);
  const kafka = client('oms-probe', { user, password, cert: !args.has('no-cert') }, 0);
  try {
    if (action === 'metadata') {
      const admin = kafka.admin();
      await admin.connect();
      await admin.fetchTopicMetadata({ topics: [topic] });
      await admin.disconnect();
    } else if (action === 'produce') {
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ key: 'probe', value: JSON.stringify({ id: randomUUID(), run: 'probe' }) }] });
      await producer.disconnect();
    } else if (action === 'consume') {
      const group = String(args.get('group') ?? `drill-probe-${randomUUID()}`);
      const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10_000, heartbeatInterval: 1000 });
      await consumer.connect();
      let failure: unknown = null;
      consumer.on(consumer.events.CRASH, (e) => { failure = e.payload.error; });
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachMessage: () => Promise.resolve() });
      // joining the group and fetching is where authorization happens: give it the time to get there or fail
      const joined = new Promise<void>((resolve) => consumer.on(consumer.events.FETCH_START, () => { resolve(); }));
      await Promise.race([joined, sleep(20_000)]);
      await consumer.disconnect();
      if (failure !== null) throw failure instanceof Error ? failure : new Error(JSON.stringify(failure));
    } else {
      throw new Error(`unknown probe action '${action}' (produce, consume, metadata)`);
    }
    await emitLast({ ok: true });
  } catch (error) {
    await emitLast({ ok: false, error: message(error), type: error instanceof Error ? error.name : typeof error });
  }
}

runAgentCommands('kafka-agent', 'kafka-agent.ts load --run ID [--producers N] [--interval-ms MS] | read --run ID --from OFFSETS_JSON | probe --action A [...]', {
  load: (args) => load(required(args, 'run'), Number(args.get('producers') ?? 4), Number(args.get('interval-ms') ?? 20)),
  read: (args) => read(required(args, 'run'), JSON.parse(required(args, 'from')) as { partition: number; offset: string }[]),
  probe,
});
