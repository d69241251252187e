// One Kafka broker (the pinned jars, KRaft: broker and controller in one JVM) on loopback for the services' tests,
// secured as roles/kafka secures the lab's brokers: the INTERNAL and CONTROLLER listeners mutual TLS (the broker's
// certificate is the super user), the CLIENT listener SASL_SSL with SCRAM-SHA-512 and a client certificate, TLS 1.3
// only, deny-by-default ACLs. Topics, SCRAM users and ACLs come from the lab inventory and are applied with the
// roles' own tool (oms-kafka-admin reconcile); replication is 1 here, there being one broker.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { Daemon, freePort } from './daemon.ts';
import type { LocalPki } from './pki.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const KAFKA = join(ROOT, '.toolchain/kafka');
const ADMIN_JAR = join(ROOT, '.toolchain/kafka-admin/oms-kafka-admin.jar');

interface Declared {
  topics: { name: string; partitions: number; configs?: Record<string, string> }[];
  acls: Record<string, unknown>[];
  users: string[];
}

/** The lab inventory's topics and ACLs, with its `{{ var }}` references to plain variables of the same file filled in. */
export function labKafkaDeclarations(): Declared {
  const path = join(ROOT, 'inventories/lab/group_vars/all/kafka.yml');
  const vars = parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const fill = (value: unknown): unknown => {
    if (typeof value === 'string') {
      return value.replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (_m, name: string) => {
        const v = vars[name];
        if (typeof v !== 'string') throw new Error(`${path}: ${name} is not a plain string variable`);
        return v;
      });
    }
    if (Array.isArray(value)) return value.map(fill);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v)]));
    return value;
  };
  const topics = fill(vars.kafka_topics) as Declared['topics'];
  const acls = fill(vars.kafka_acls) as Declared['acls'];
  const users = [...new Set(acls.map((a) => String(a.principal).replace(/^User:/, '')))];
  return { topics, acls, users };
}

export interface LocalKafka {
  /** the CLIENT listener (SASL_SSL SCRAM-SHA-512, client certificate required) */
  bootstrap: string;
  /** the INTERNAL listener (TLS; the server certificate's principal is a super user): for test set-up and checks only */
  internalBootstrap: string;
  /** SCRAM password of each declared user */
  passwords: Record<string, string>;
  topics: string[];
  daemon: Daemon;
  stop(): Promise<void>;
}

const portOpen = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = connect({ host: '127.0.0.1', port }, () => { s.end(); resolve(true); });
  s.on('error', () => { resolve(false); });
});

export async function startKafka(dir: string, pki: LocalPki): Promise<LocalKafka> {
  const declared = labKafkaDeclarations();
  const [client, internal, controller] = [await freePort(), await freePort(), await freePort()];
  const data = join(dir, 'data');
  mkdirSync(data, { recursive: true });
  const ssl = [
    'ssl.keystore.type=PKCS12', `ssl.keystore.location=${pki.server.keystore}`,
    `ssl.keystore.password=${pki.server.keystorePassword}`, `ssl.key.password=${pki.server.keystorePassword}`,
    'ssl.truststore.type=PEM', `ssl.truststore.location=${pki.ca}`,
    'ssl.endpoint.identification.algorithm=https', 'ssl.protocol=TLSv1.3', 'ssl.enabled.protocols=TLSv1.3',
  ];
  const server = join(dir, 'server.properties');
  writeFileSync(server, [
    'process.roles=broker,controller', 'node.id=1', `controller.quorum.voters=1@127.0.0.1:${String(controller)}`,
    `listeners=INTERNAL://127.0.0.1:${String(internal)},CLIENT://127.0.0.1:${String(client)},CONTROLLER://127.0.0.1:${String(controller)}`,
    `advertised.listeners=INTERNAL://127.0.0.1:${String(internal)},CLIENT://127.0.0.1:${String(client)}`,
    'listener.security.protocol.map=INTERNAL:SSL,CLIENT:SASL_SSL,CONTROLLER:SSL',
    'inter.broker.listener.name=INTERNAL', 'controller.listener.names=CONTROLLER',
    ...ssl, 'ssl.client.auth=required', 'listener.name.client.ssl.client.auth=required',
    'ssl.principal.mapping.rules=RULE:^(?:.*,)?CN=([^,]+)(?:,.*)?$/$1/,DEFAULT',
    'sasl.enabled.mechanisms=SCRAM-SHA-512', 'listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512',
    'listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer', 'allow.everyone.if.no.acl.found=false',
    'super.users=User:localhost', `log.dirs=${data}`, 'auto.create.topics.enable=false', 'num.partitions=1',
    'default.replication.factor=1', 'min.insync.replicas=1', 'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1', 'transaction.state.log.min.isr=1', 'group.initial.rebalance.delay.ms=0',
    '',
  ].join('\n'));
  const log4j = join(dir, 'log4j.properties');
  writeFileSync(log4j, ['log4j.rootLogger=WARN, stderr', 'log4j.appender.stderr=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stderr.Target=System.err', 'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stderr.layout.ConversionPattern=%d %p %c{1}: %m%n', 'log4j.logger.kafka.server.KafkaServer=INFO', ''].join('\n'));
  const java = (heap: string, main: string, args: string[], classpath = `${KAFKA}/libs/*`): string[] =>
    [`-Xmx${heap}`, '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4j}`, '-cp', classpath, main, ...args];

  await run('java', java('256m', 'kafka.tools.StorageTool', ['format', '-t', randomUUID().replace(/-/g, '').slice(0, 22), '-c', server, '--ignore-formatted']));
  const daemon = new Daemon({ name: 'kafka', command: 'java', args: java('512m', 'kafka.Kafka', [server]), logFile: join(dir, 'kafka.log') });
  // the CLIENT port opens after the controller and broker are up; reconcile below then waits for the broker itself
  await daemon.start(() => portOpen(client), 90_000);

  const admin = join(dir, 'admin.properties');
  writeFileSync(admin, [`bootstrap.servers=127.0.0.1:${String(internal)}`, 'security.protocol=SSL', ...ssl, ''].join('\n'));
  const passwords = Object.fromEntries(declared.users.map((u) => [u, randomBytes(18).toString('base64url')]));
  const desired = join(dir, 'desired.json');
  writeFileSync(desired, JSON.stringify({
    client_bootstrap: `127.0.0.1:${String(client)}`,
    topics: declared.topics.map((t) => ({ ...t, replication_factor: 1, configs: { ...t.configs, 'min.insync.replicas': '1' } })),
    users: Object.entries(passwords).map(([name, password]) => ({ name, password })),
    acls: declared.acls,
  }));
  const adminJava = java('256m', 'OmsKafkaAdmin', ['--config', admin], `${KAFKA}/libs/*:${ADMIN_JAR}`);
  try {
    await run('java', [...adminJava, 'health', '--brokers', '1', '--wait', '60']);
    await run('java', [...adminJava, 'reconcile', '--desired', desired]);
  } catch (error) {
    await daemon.stop();
    throw new Error(`kafka set-up failed: ${(error as { stderr?: string }).stderr ?? String(error)}\n${daemon.tail()}`);
  }
  return {
    bootstrap: `127.0.0.1:${String(client)}`,
    internalBootstrap: `127.0.0.1:${String(internal)}`,
    passwords,
    topics: declared.topics.map((t) => t.name),
    daemon,
    stop: () => daemon.stop(),
  };
}
