// The servers a service's tests need, started natively on loopback in one temporary folder and stopped together:
// `await using stack = await startLocalStack({ postgres: true, redis: 'order-service', kafka: true })`.
import { chmodSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKafka, type LocalKafka } from './kafka.ts';
import { localPki, type LocalPki } from './pki.ts';
import { startPostgres, type LocalPostgres } from './postgres.ts';
import { startRedis, type LocalRedis } from './redis.ts';

export interface StackOptions {
  postgres?: boolean;
  /** the Redis ACL user to create (keys under `<prefix>*`) */
  redis?: { user: string; keyPrefix: string };
  kafka?: boolean;
}

export interface LocalStack {
  dir: string;
  pki: LocalPki;
  postgres?: LocalPostgres;
  redis?: LocalRedis;
  kafka?: LocalKafka;
  stop(): Promise<void>;
}

export async function startLocalStack(options: StackOptions): Promise<LocalStack> {
  const dir = mkdtempSync(join(tmpdir(), 'oms-stack-'));
  chmodSync(dir, 0o711); // PostgreSQL runs as its own user and must reach its folder (nothing here is listable)
  const sub = (name: string): string => {
    const path = join(dir, name);
    mkdirSync(path);
    return path;
  };
  const stack: LocalStack = {
    dir,
    pki: await localPki(sub('pki')),
    stop: async () => {
      await Promise.all([stack.kafka?.stop(), stack.redis?.stop(), stack.postgres?.stop()]);
      if (!process.env.OMS_KEEP_STACK) rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    // started one after the other: on 2 cores the JVM's start is quicker alone
    if (options.postgres) stack.postgres = await startPostgres(sub('postgres'), stack.pki);
    if (options.redis) stack.redis = await startRedis(sub('redis'), stack.pki, { name: options.redis.user, keyPrefix: options.redis.keyPrefix });
    if (options.kafka) stack.kafka = await startKafka(sub('kafka'), stack.pki);
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}
