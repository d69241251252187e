// Kafka and ZooKeeper on the lab: no plain-text listener anywhere, clients refused without a certificate, without
// SASL, with a wrong password or outside their ACLs; the reconciliation reports drift and refuses bad input; the
// drills lose no acknowledged message. Runs inside lab.e2e.ts, on its lab.
import assert from 'node:assert/strict';
import { KAFKA_AGENT, labSecret, runAgent } from '../../drills/agent.ts';
import { assertOk, inHost, inventory, it, MINUTES, runDrillsTest } from './harness.ts';

interface Probe {
  ok: boolean;
  error?: string;
  type?: string;
}

const probe = (...args: string[]): Promise<Probe> => runAgent<Probe>(KAFKA_AGENT, inventory, 'app1', ['probe', ...args]);
const as = (user: string): string[] => ['--user', user, '--password', labSecret(`kafka-${user}`)];
const ORDER_EVENTS = 'oms.order-events';
const OPENSSL = 'openssl s_client -quiet -verify_return_error -CAfile /etc/oms/pki/ca-bundle.pem';
const CERT = '-cert /etc/oms/pki/host.crt -key /etc/oms/pki/host.key';

export function kafkaTests(): void {
  it('kafka: the CLIENT listener refuses no certificate, no SASL login and a wrong password; ACLs allow each service its own', async () => {
    // the probes that share no consumer group run at once (each one is a client process on a lab host, most of
    // whose time is spent waiting: one at a time they took over a minute)
    const [allowed, noCert, noSasl, wrong, orderWrites, notifWrites, drillWrites, otherGroup] = await Promise.all([
      probe('--action', 'produce'),
      probe('--action', 'metadata', '--no-cert'),
      probe('--action', 'metadata', '--no-sasl'),
      probe('--action', 'metadata', '--password', 'not-the-password-of-drill-agent'),
      // order-service writes order events and nothing else; notification-service reads them with its group only
      probe('--action', 'produce', '--topic', ORDER_EVENTS, ...as('order-service')),
      probe('--action', 'produce', '--topic', ORDER_EVENTS, ...as('notification-service')),
      probe('--action', 'produce', '--topic', ORDER_EVENTS),
      probe('--action', 'consume', '--topic', ORDER_EVENTS, '--group', 'someone-else', ...as('notification-service')),
    ]);
    assert.equal(allowed.ok, true, `drill-agent writing its topic: ${JSON.stringify(allowed)}`);
    assert.equal(noCert.ok, false, 'a client without a certificate was let in');
    assert.equal(noSasl.ok, false, 'a client without a SASL login was let in');
    assert.equal(wrong.ok, false, 'a wrong password was accepted');
    assert.match(wrong.error ?? '', /SASL|authentication/i, JSON.stringify(wrong));
    assert.deepEqual(orderWrites, { ok: true });
    assert.equal(notifWrites.ok, false, 'notification-service wrote order events');
    assert.match(notifWrites.error ?? '', /authoriz/i, JSON.stringify(notifWrites));
    assert.equal(drillWrites.ok, false, 'the drill user wrote order events');
    assert.equal(otherGroup.ok, false, 'notification-service consumed with a group not its own');
    // these two use notification-service's group, one after the other
    const orderReads = await probe('--action', 'consume', '--topic', ORDER_EVENTS, '--group', 'notification-service', ...as('order-service'));
    assert.equal(orderReads.ok, false, 'order-service read the order events');
    assert.deepEqual(await probe('--action', 'consume', '--topic', ORDER_EVENTS, '--group', 'notification-service', ...as('notification-service')), { ok: true });
  });

  it('kafka: no plain-text listener exists; every Kafka and ZooKeeper port speaks TLS only; ZooKeeper refuses non-TLS clients', async () => {
    // the hosts at once: most of each check is waiting (handshakes, timeouts), and one host after another took 98 s
    await Promise.all(inventory.hosts.filter((h) => h.groups.includes('kafka')).map(async (host) => {
      const listening = await inHost(host.name, 'sh', '-c', "ss -Htlnp | grep '\"java\"' | awk '{print $4}' | sort -u");
      assertOk(listening, `ss on ${host.name}`);
      const sockets = listening.stdout.split('\n').filter(Boolean);
      // on loopback only: the JMX exporter agents (plain HTTP, served to the monitoring host by their TLS fronts)
      const loopback = (s: string): boolean => /^(127\.|\[::1\]|\[::ffff:127\.)/.test(s);
      const portOf = (s: string): number => Number(s.slice(s.lastIndexOf(':') + 1));
      assert.deepEqual(sockets.filter(loopback).map(portOf).sort(), [7171, 7172], `${host.name}: loopback listeners ${sockets.join(', ')}`);
      const ports = [...new Set(sockets.filter((s) => !loopback(s)).map(portOf))];
      assert.ok(ports.includes(9093) && ports.includes(9094) && ports.includes(2182), `${host.name} listens on ${ports.join(', ')}`);
      for (const port of ports) {
        assert.ok([9093, 9094, 2182, 2888, 3888].includes(port), `${host.name}: unexpected listener on ${port}`);
        // a TLS handshake with the host's certificate completes on every port (so none is plain text)
        const tls = await inHost(host.name, 'sh', '-c', `echo | timeout 5 ${OPENSSL} ${CERT} -connect ${host.address}:${port} 2>&1 | grep -c 'verify return:1' || true`);
        assert.ok(Number(tls.stdout.trim()) >= 1, `${host.name}:${port} did not complete a TLS handshake: ${tls.stdout}`);
      }
      // ZooKeeper: a plain-text four-letter command gets no answer; TLS without a client certificate is refused
      const plain = await inHost(host.name, 'sh', '-c', `exec 3<>/dev/tcp/${host.address}/2182; printf ruok >&3; timeout 3 cat <&3 || true`);
      assert.doesNotMatch(plain.stdout, /imok/, `${host.name}: ZooKeeper answered a plain-text client`);
      const noCert = await inHost(host.name, 'sh', '-c', `printf ruok | timeout 5 ${OPENSSL} -ign_eof -connect ${host.address}:2182 2>&1 || true`);
      assert.doesNotMatch(noCert.stdout, /imok/, `${host.name}: ZooKeeper answered a TLS client without a certificate`);
      const withCert = await inHost(host.name, 'sh', '-c', `printf ruok | timeout 5 ${OPENSSL} ${CERT} -ign_eof -connect ${host.address}:2182 2>/dev/null || true`);
      assert.match(withCert.stdout, /imok/, `${host.name}: ZooKeeper did not answer a TLS client with a certificate`);
      const closed = await inHost(host.name, 'sh', '-c', `for p in 2181 9092; do timeout 2 sh -c "exec 3<>/dev/tcp/${host.address}/$p" 2>/dev/null && echo "open $p"; done; true`);
      assert.equal(closed.stdout.trim(), '', `${host.name}: ${closed.stdout}`);
    }));
  });

  it('kafka: the reconciliation reports undeclared state as drift, leaves it, and refuses a bad declaration', async () => {
    const extra = JSON.stringify({ client_bootstrap: '', topics: [{ name: 'e2e.undeclared', partitions: 1, replication_factor: 3, configs: {} }], users: [], acls: [] });
    const made = await inHost('kafka1', 'sh', '-c', `echo '${extra}' > /tmp/extra.json && oms-kafka-admin reconcile --desired /tmp/extra.json`);
    assertOk(made, 'creating an undeclared topic by hand');
    const check = await inHost('kafka1', 'sh', '-c', 'oms-kafka-admin reconcile --desired /etc/kafka/desired-state.json --check');
    assertOk(check, 'reconcile --check');
    const report = JSON.parse(check.stdout) as { changed: boolean; actions: string[]; drift: string[] };
    assert.equal(report.changed, false, JSON.stringify(report.actions));
    assert.ok(report.drift.some((d) => d.startsWith('topic e2e.undeclared exists but is not declared')), JSON.stringify(report.drift));
    const topics = await inHost('kafka1', 'oms-kafka-admin', 'health');
    assert.ok((JSON.parse(topics.stdout) as { topics: number }).topics >= 6, 'topics are never deleted');

    for (const [bad, message] of [
      ['{"topics":[{"name":"a","partitions":1,"replication_factor":3},{"name":"a","partitions":1,"replication_factor":3}]}', /topic 'a' is declared twice/],
      ['{"topics":[{"name":"a","partitions":0,"replication_factor":3}]}', /partitions must be >= 1/],
      ['{"topics":[{"name":"a","partitions":1}]}', /replication_factor must be >= 1/],
      ['{"acls":[{"principal":"order-service","resource_type":"topic","name":"t","operations":["read"]}]}', /must look like User:<name>/],
      ['{"acls":[{"principal":"User:x","resource_type":"topic","name":"t","operations":["reed"]}]}', /operation 'reed' is not one of/],
      ['{"users":[{"name":"u","password":"short"}],"client_bootstrap":"x:1"}', /shorter than 16/],
      ['not json', /cannot read/],
    ] as const) {
      const result = await inHost('kafka1', 'sh', '-c', `echo '${bad}' > /tmp/bad.json && oms-kafka-admin reconcile --desired /tmp/bad.json`);
      assert.equal(result.code, 2, `${bad}: exit ${String(result.code)} ${result.stdout}`);
      assert.match(result.stderr, message);
    }
    const usage = await inHost('kafka1', 'oms-kafka-admin', 'health', '--wait', 'soon');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--wait must be a whole number/);
  });

  it('kafka: drills lose no acknowledged message (broker, controller, ZooKeeper leader, rolling restart)', { timeout: 30 * MINUTES }, async (t) => {
    const drills = ['kafka-broker-kill', 'kafka-controller-kill', 'zookeeper-node-kill', 'kafka-rolling-restart'];
    await runDrillsTest(t, drills, 30 * MINUTES, ['kafka-controller-kill', 'zookeeper-node-kill', 'kafka-rolling-restart']);
  });
}
