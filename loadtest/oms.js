/* global __ENV, __VU, __ITER, open, console */
// The OMS API under a shoppers' load, from the internet's side: k6 in the lab's client host (ext zone) against the
// gateways' virtual IP by the API's name, over TLS 1.3 verified against the lab CA (SSL_CERT_FILE), each virtual user
// from its own source address (k6 --local-ips), as real users behind the gateway's per-address rate limits.
//
// Three scenarios, each a group of users who pace themselves (a user's requests stay under the per-address limits):
//   browse  the catalog: the product list, then one product
//   order   one order of one unit a time, with an Idempotency-Key (<run>-<vu>-<iteration>), paid with a lab card
//   read    a customer's own orders: the list, then the newest order
//
// `npm run bench -- stack` runs the order scenario alone at fixed arrival rates instead (orderRate), from the lab's
// load-test addresses, which the rate limits skip.
//
// Run it with `npm run load` (zx-scripts/load/), which mints the users' tokens, writes the configuration
// (OMS_LOAD_CONFIG: see zx-scripts/load/k6.ts, LoadConfig) and runs k6 in the client's namespace. With `ackLog` set,
// every order attempt is one JSON line on the console (k6 --console-output): what the drills audit.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

const config = JSON.parse(open(__ENV.OMS_LOAD_CONFIG));

const base = `https://${config.name}`;
const ordersAcknowledged = new Counter('orders_acknowledged');
const orderFailed = new Rate('order_failed');
const latency = {
  browse: new Trend('browse_ms', true),
  order: new Trend('order_ms', true),
  read: new Trend('read_ms', true),
};

const users = (n, exec) => ({
  executor: 'constant-vus', vus: n, duration: `${config.seconds}s`, exec, gracefulStop: `${config.requestTimeoutSeconds}s`,
});

export const options = {
  hosts: { [config.name]: config.vip },
  tlsVersion: { min: 'tls1.3', max: 'tls1.3' },
  // a user keeps its connection as a browser would; the VIP moving breaks it and the next request connects anew
  noVUConnectionReuse: false,
  scenarios: Object.fromEntries(Object.entries({
    browse: users(config.users.browse, 'browse'),
    // a benchmark's orders arrive at a fixed rate, whatever the answers take (an open model: a slow stack queues)
    order: config.orderRate ? {
      executor: 'constant-arrival-rate', rate: config.orderRate, timeUnit: '1s', duration: `${config.seconds}s`,
      preAllocatedVUs: config.users.order, maxVUs: config.users.order, exec: 'order', gracefulStop: `${config.requestTimeoutSeconds}s`,
    } : users(config.users.order, 'order'),
    read: users(config.users.read, 'read'),
  }).filter(([, s]) => (s.vus ?? s.preAllocatedVUs) > 0)),
  summaryTrendStats: ['count', 'avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  // no thresholds in a drill: its fault makes requests fail on purpose, and the drill's audit judges
  thresholds: config.thresholds ? {
    http_req_failed: [`rate<${config.thresholds.failedRate}`],
    http_req_duration: [`p(95)<${config.thresholds.p95Ms}`, `p(99)<${config.thresholds.p99Ms}`],
    order_ms: [`p(95)<${config.thresholds.p95Ms}`, `p(99)<${config.thresholds.p99Ms}`],
    order_failed: [`rate<${config.thresholds.failedRate}`],
  } : {},
};

/** This user's token: users are numbered from 1 (k6's VU ids); tokens are minted for every one of them. */
const tokenOf = (vu) => config.tokens[(vu - 1) % config.tokens.length];

function get(path, name, vu) {
  const res = http.get(`${base}${path}`, {
    headers: { authorization: `Bearer ${tokenOf(vu)}` },
    tags: { name },
    timeout: `${config.requestTimeoutSeconds}s`,
  });
  return res;
}

/**
 * Users arrive over their first pace, not in the same millisecond (a run starts all its VUs at once): without this,
 * 192 TLS handshakes and 128 orders land together and the gateways open as many upstream mTLS connections at once.
 */
function arrive(seconds) {
  if (__ITER === 0) sleep(Math.random() * seconds);
}

/** Sleeps what is left of the user's pace since `started` (ms). */
function pace(started, seconds) {
  const left = seconds - (Date.now() - started) / 1000;
  if (left > 0) sleep(left);
}

export function browse() {
  arrive(config.paceSeconds.browse);
  const started = Date.now();
  const list = get('/api/v1/products?pageSize=20', 'products', __VU);
  latency.browse.add(list.timings.duration);
  const ok = check(list, { 'product list 200': (r) => r.status === 200 });
  if (ok) {
    const items = list.json('items') ?? [];
    const product = items[(__VU + __ITER) % Math.max(1, items.length)];
    if (product) {
      const one = get(`/api/v1/products/${product.id}`, 'product', __VU);
      latency.browse.add(one.timings.duration);
      check(one, { 'product 200': (r) => r.status === 200 });
    }
  }
  pace(started, config.paceSeconds.browse);
}

/**
 * What an order attempt came to: ok (201), failed (an answer that refused it, or no connection at all: the request
 * was never sent), unknown (sent, but no answer: it may have been placed; the audit looks it up).
 */
function outcome(res) {
  if (res.status === 201) return 'ok';
  if (res.status !== 0) return 'failed';
  // k6's error codes: 1100-1199 DNS, 1200-1299 TCP dial, 1300-1399 TLS handshake: nothing reached the gateway
  return res.error_code >= 1100 && res.error_code < 1400 ? 'failed' : 'unknown';
}

export function order() {
  if (!config.orderRate) arrive(config.paceSeconds.order);
  const started = Date.now();
  const id = `${config.run}-${__VU}-${__ITER}`;
  const product = config.products[__ITER % config.products.length];
  const res = http.post(`${base}/api/v1/orders`, JSON.stringify({
    items: [{ productId: product, quantity: 1 }],
    // not '1 Load Street': the Core Rule Set reads '<number> <SQL word>' in a body as SQL injection (a false
    // positive real shoppers can meet: '2 Select Road' is refused too; see the README's gateway section)
    shippingAddress: { name: 'K. Six', line1: '12 Analytical Row', city: 'Berlin', postcode: '10115', country: 'DE' },
    paymentToken: 'tok_approve_lab',
  }), {
    headers: { authorization: `Bearer ${tokenOf(__VU)}`, 'content-type': 'application/json', 'idempotency-key': id },
    tags: { name: 'create-order' },
    timeout: `${config.requestTimeoutSeconds}s`,
  });
  const end = Date.now();
  const result = outcome(res);
  latency.order.add(res.timings.duration);
  orderFailed.add(result !== 'ok');
  if (result === 'ok') ordersAcknowledged.add(1);
  check(res, { 'order 201': (r) => r.status === 201 });
  if (config.ackLog) {
    const error = result === 'ok' ? undefined : (res.status === 0 ? `${res.error_code} ${res.error}` : `HTTP ${res.status} ${String(res.body).slice(0, 80)}`);
    console.log(JSON.stringify({ kind: 'write', id, start: started, end, outcome: result, ...(error ? { error } : {}) }));
  }
  if (!config.orderRate) pace(started, config.paceSeconds.order);
}

export function read() {
  arrive(config.paceSeconds.read);
  const started = Date.now();
  const list = get('/api/v1/orders?limit=5', 'orders', __VU);
  latency.read.add(list.timings.duration);
  if (check(list, { 'order list 200': (r) => r.status === 200 })) {
    const newest = (list.json('items') ?? [])[0];
    if (newest) {
      const one = get(`/api/v1/orders/${newest.id}`, 'order', __VU);
      latency.read.add(one.timings.duration);
      check(one, { 'order 200, the same order': (r) => r.status === 200 && r.json('id') === newest.id });
    }
  }
  pace(started, config.paceSeconds.read);
}

const fmt = (v) => (v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** A readable report beside the JSON summary: per request kind its count, rate and latency, then the thresholds. */
function report(data) {
  const m = data.metrics;
  const seconds = data.state.testRunDurationMs / 1000;
  const lines = [
    `k6 run ${config.run}: ${seconds.toFixed(0)} s, users browse ${config.users.browse} / order ${config.users.order} / read ${config.users.read}`,
    '',
    'kind       requests   per s    p50 ms   p95 ms   p99 ms   max ms',
  ];
  for (const [kind, metric] of [['browse', 'browse_ms'], ['order', 'order_ms'], ['read', 'read_ms'], ['all', 'http_req_duration']]) {
    const t = m[metric];
    if (!t) continue;
    const count = kind === 'all' ? m.http_reqs.values.count : t.values.count ?? 0;
    lines.push(`${kind.padEnd(10)} ${String(count).padStart(8)} ${fmt(count / seconds).padStart(7)} ${fmt(t.values.med).padStart(9)} ${fmt(t.values['p(95)']).padStart(8)} ${fmt(t.values['p(99)']).padStart(8)} ${fmt(t.values.max).padStart(8)}`);
  }
  const failed = m.http_req_failed ? m.http_req_failed.values : { rate: 0, passes: 0 };
  lines.push('', `orders acknowledged: ${m.orders_acknowledged ? m.orders_acknowledged.values.count : 0}; requests failed: ${failed.passes} (${(failed.rate * 100).toFixed(2)} %)`);
  const thresholds = Object.entries(m).flatMap(([name, metric]) => Object.entries(metric.thresholds ?? {}).map(([t, v]) => `  ${v.ok ? 'ok    ' : 'CROSSED'} ${name} ${t}`));
  if (thresholds.length > 0) lines.push('thresholds:', ...thresholds);
  return lines.join('\n') + '\n';
}

export function handleSummary(data) {
  const text = report(data);
  // a drill's load has its order lines on stdout: the report goes to its file only
  return { [`${config.outDir}/summary.json`]: JSON.stringify(data, null, 2), [`${config.outDir}/report.txt`]: text, ...(config.ackLog ? {} : { stdout: text }) };
}
