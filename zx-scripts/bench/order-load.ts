// The load of `bench -- orders`, in its own process (forked with an IPC channel): customers placing approved orders
// back to back over HTTPS (the gateway's client certificate, keep-alive). Its own process keeps the client's work off
// the service's event loop, and lets the benchmark say how much CPU the client used, apart from the service's.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { newKey, orderBody } from '@oms/order-service/test/harness';

export interface LoadInput {
  url: string;
  tls: { ca: string; cert: string; key: string };
  tokens: string[];
  products: string[];
  seconds: number;
  warmupSeconds: number;
}

export interface LoadOutput {
  /** latencies of the orders placed after the warm-up, ms */
  latencies: number[];
  /** orders placed in the whole run, warm-up included (what the CPU figures are divided by) */
  ordersInRun: number;
  /** CPU this process used in the whole run, ms */
  cpuMs: number;
  errors: number;
  firstError?: string;
}

const input = await new Promise<LoadInput>((resolve) => { process.once('message', (m) => { resolve(m as LoadInput); }); });
const cpuAtStart = process.cpuUsage();
const agent = new Agent({ keepAlive: true, ca: readFileSync(input.tls.ca), cert: readFileSync(input.tls.cert), key: readFileSync(input.tls.key), servername: 'localhost', maxSockets: input.tokens.length });

function post(token: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${input.url}/api/v1/orders`, {
      method: 'POST', agent,
      headers: { authorization: `Bearer ${token}`, 'idempotency-key': newKey(), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, text }); });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const latencies: number[] = [];
let ordersInRun = 0;
let errors = 0;
let firstError: string | undefined;
const measureFrom = Date.now() + input.warmupSeconds * 1000;
const until = measureFrom + input.seconds * 1000;
await Promise.all(input.tokens.map(async (token) => {
  while (Date.now() < until) {
    const productId = input.products[Math.floor(Math.random() * input.products.length)] ?? '';
    const body = JSON.stringify(orderBody([{ productId, quantity: 1 }]));
    const t0 = performance.now();
    let outcome: { status: number; text: string };
    try {
      outcome = await post(token, body);
    } catch (error) {
      outcome = { status: 0, text: error instanceof Error ? error.message : String(error) };
    }
    if (outcome.status === 201) ordersInRun++;
    if (Date.now() < measureFrom) continue;
    if (outcome.status === 201) latencies.push(performance.now() - t0);
    else {
      errors++;
      firstError ??= `${String(outcome.status)} ${outcome.text.slice(0, 200)}`;
    }
  }
}));
agent.destroy();
const cpu = process.cpuUsage(cpuAtStart);
const output: LoadOutput = { latencies, ordersInRun, cpuMs: (cpu.user + cpu.system) / 1000, errors, ...(firstError === undefined ? {} : { firstError }) };
process.send?.(output, () => { process.disconnect(); });
