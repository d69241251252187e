// SessionProducer against a real Kafka broker (the pinned jars, TLS, SASL SCRAM, the lab's topics and ACLs): a send
// that fails after part of it was appended must not make the next send's messages vanish.
//
// The failure is made deterministic with one request to two partitions of which the broker refuses one (a message
// over the topic's size limit) and appends the other: kafkajs 2.2.4 then gives back the sequence numbers of both, and
// a plain idempotent producer's next send of as many messages to the appended partition is taken by the broker for a
// duplicate of the appended batch and dropped, although send() resolves. The same happens when a broker dies after
// appending but before answering, which is how the kafka-controller-kill drill lost outbox events.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { startLocalStack, type LocalStack } from '@oms/zx-scripts/testkit/stack';
import { SessionProducer } from '../src/clients.ts';

const TOPIC = 'oms.order-events';
let stack: LocalStack;

function kafkaAs(user: 'order-service' | 'notification-service'): Kafka {
  const kafka = stack.kafka!;
  const tls = stack.pki.client(user);
  return new Kafka({
    clientId: `session-producer-test-${user}`, brokers: [kafka.bootstrap], logLevel: logLevel.NOTHING,
    ssl: { ca: readFileSync(tls.ca, 'utf8'), cert: readFileSync(tls.cert, 'utf8'), key: readFileSync(tls.key, 'utf8') },
    sasl: { mechanism: 'scram-sha-512', username: user, password: kafka.passwords[user]! },
    retry: { retries: 2, initialRetryTime: 100 },
  });
}

/** Every value in `partition` of the order events topic, from its start. */
async function valuesIn(partition: number): Promise<string[]> {
  const admin = kafkaAs('notification-service').admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(TOPIC).finally(() => admin.disconnect());
  const high = Number(offsets.find((o) => o.partition === partition)?.high ?? 0);
  const consumer = kafkaAs('notification-service').consumer({ groupId: `notification-service`, maxWaitTimeInMs: 100 });
  const values: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`read ${String(values.length)} of ${String(high)} messages of partition ${String(partition)} in 20 s`)); }, 20_000);
      void consumer.run({
        eachMessage: async (m) => {
          if (m.partition === partition) values.push(m.message.value?.toString() ?? '');
          if (Number(m.message.offset) + 1 >= high && m.partition === partition) { clearTimeout(timer); resolve(); }
          await Promise.resolve();
        },
      });
      consumer.seek({ topic: TOPIC, partition, offset: '0' });
    });
  } finally {
    await consumer.disconnect();
  }
  return values;
}

/** A send that the broker half appends: `label`-1 and -2 to `partition`, and a message over the size limit to another. */
async function halfAppendedSend(producer: Pick<Producer, 'send'>, partition: number, label: string): Promise<void> {
  await assert.rejects(producer.send({
    topic: TOPIC, acks: -1,
    messages: [
      { partition, value: `${label}-1` }, { partition, value: `${label}-2` },
      { partition: partition + 1, value: 'x'.repeat(2 * 1024 * 1024) },
    ],
  }));
}

describe('SessionProducer (real Kafka)', { timeout: 180_000 }, () => {
  before(async () => { stack = await startLocalStack({ kafka: true }); });
  after(async () => { await stack.stop(); });

  it('a plain kafkajs idempotent producer drops the next send after a half-appended one (why SessionProducer exists)', async () => {
    const producer = kafkaAs('order-service').producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await halfAppendedSend(producer, 0, 'plain-a');
      await producer.send({ topic: TOPIC, acks: -1, messages: [{ partition: 0, value: 'plain-b-1' }, { partition: 0, value: 'plain-b-2' }] });
    } finally {
      await producer.disconnect();
    }
    const values = await valuesIn(0);
    assert.deepEqual(values.filter((v) => v.startsWith('plain-a')), ['plain-a-1', 'plain-a-2'], 'the broker appended the half it accepted');
    assert.deepEqual(values.filter((v) => v.startsWith('plain-b')), [], 'kafkajs 2.2.4 reused the sequence numbers: the acknowledged send is not in the topic');
  });

  it('after a half-appended send, the next send is in the topic: a new producer session numbers it afresh', async () => {
    const producer = new SessionProducer(kafkaAs('order-service'));
    await producer.connect();
    try {
      await halfAppendedSend(producer, 2, 'session-a');
      await producer.send({ topic: TOPIC, acks: -1, messages: [{ partition: 2, value: 'session-b-1' }, { partition: 2, value: 'session-b-2' }] });
      await producer.send({ topic: TOPIC, acks: -1, messages: [{ partition: 2, value: 'session-c-1' }] });
    } finally {
      await producer.disconnect();
    }
    assert.deepEqual(await valuesIn(2), ['session-a-1', 'session-a-2', 'session-b-1', 'session-b-2', 'session-c-1']);
  });
});
