// The load of `bench -- orders`, in a worker thread: customers placing approved orders back to back over HTTPS (the
// gateway's client certificate, keep-alive) so that the client's work does not share the service's event loop.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { parentPort, workerData } from 'node:worker_threads';
import { newKey, orderBody } from '../../services/order-service/test/harness.ts';

export interface LoadInput {
  url: string;
  tls: { ca: string; cert: string; key: string };
  tokens: string[];
  products: string[];
  seconds: number;
  warmupSeconds: number;
}

export interface LoadOutput {
  latencies: number[];
  errors: number;
  firstError?: string;
}

const input = workerData as LoadInput;
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
    if (Date.now() < measureFrom) continue;
    if (outcome.status === 201) latencies.push(performance.now() - t0);
    else {
      errors++;
      firstError ??= `${String(outcome.status)} ${outcome.text.slice(0, 200)}`;
    }
  }
}));
agent.destroy();
parentPort?.postMessage({ latencies, errors, ...(firstError === undefined ? {} : { firstError }) } satisfies LoadOutput);
