// The k6 load script of `go run ./bench`. The harness writes a JSON
// configuration and passes its path in BENCH_CONFIG; nothing here is edited
// by hand between runs.
//
// Every iteration is one request; the constant-arrival-rate executor starts
// iterations at cfg.rate per second whether or not earlier ones finished (an
// open arrival model), so a slow gateway shows up as latency and dropped
// iterations, never as a politely lower offered rate.
import http from 'k6/http';
import { SharedArray } from 'k6/data';
import { Counter, Rate, Trend } from 'k6/metrics';

const cfg = JSON.parse(open(__ENV.BENCH_CONFIG));

const payments = new SharedArray('payments', () => JSON.parse(open(cfg.pool_file)).payments);
const replays = new SharedArray('replays', () => JSON.parse(open(cfg.pool_file)).replays || []);
const refundIDs = new SharedArray('refund_ids', () => JSON.parse(open(cfg.pool_file)).refund_ids || []);

export const STATUSES = ['0', '200', '201', '202', '400', '401', '404', '409', '413', '415', '422', '429', '500', '502', '503', '504', 'other'];
export const OPS = ['create', 'replay', 'get', 'list', 'provider'];

// Per-operation metrics are plain metrics with the operation in their name,
// not tagged sub-metrics: k6 matches every sample against every sub-metric
// threshold, which on a 2-core machine costs the gateway CPU it needs.
// lat_<op> is the request's duration (sending + waiting + receiving, as in
// http_req_duration); ok_<op> is the share answered with the expected status
// (and, for replays, Idempotent-Replayed: true); status_<code> counts the
// other answers by status (0 = no answer: timeout, refused or reset).
const lat = {};
const ok = {};
for (const op of OPS) {
  lat[op] = new Trend(`lat_${op}`, true);
  ok[op] = new Rate(`ok_${op}`);
}
const unexpected = {};
for (const s of STATUSES) {
  unexpected[s] = new Counter(`status_${s}`);
}

export const options = {
  discardResponseBodies: true,
  // Fewer tags per sample: cheaper for k6, and nothing here reads the others.
  systemTags: ['status'],
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(50)', 'p(90)', 'p(99)', 'p(99.9)'],
  scenarios: {
    load: {
      executor: 'constant-arrival-rate',
      rate: cfg.rate,
      timeUnit: '1s',
      duration: cfg.duration,
      preAllocatedVUs: cfg.pre_vus,
      maxVUs: cfg.max_vus,
      gracefulStop: '5s',
    },
  },
};

const jsonHeaders = {
  'Content-Type': 'application/json',
  Authorization: `Bearer ${cfg.api_key}`,
};
const authOnly = { Authorization: `Bearer ${cfg.api_key}` };

function pick(arr) {
  return arr[Math.floor(Math.random() * arr.length)];
}

function record(op, res, good) {
  lat[op].add(res.timings.duration);
  ok[op].add(good);
  if (!good) {
    const s = String(res.status);
    unexpected[STATUSES.includes(s) ? s : 'other'].add(1);
  }
}

function create() {
  const p = pick(payments);
  const key = `${__VU}-${__ITER}-${cfg.run_id}`;
  const body = `{"payment_id":"${p}","amount":${cfg.amount},"currency":"${cfg.currency}","reference":"bench"}`;
  const headers = Object.assign({ 'Idempotency-Key': key }, jsonHeaders);
  const res = http.post(`${cfg.gateway}/v1/refunds`, body, { headers: headers, timeout: cfg.timeout });
  record('create', res, res.status === 201);
}

function replay() {
  const r0 = pick(replays);
  const headers = Object.assign({ 'Idempotency-Key': r0.key }, jsonHeaders);
  const res = http.post(`${cfg.gateway}/v1/refunds`, r0.body, { headers: headers, timeout: cfg.timeout });
  record('replay', res, res.status === 201 && res.headers['Idempotent-Replayed'] === 'true');
}

function get() {
  const id = pick(refundIDs);
  const res = http.get(`${cfg.gateway}/v1/refunds/${id}`, { headers: authOnly, timeout: cfg.timeout });
  record('get', res, res.status === 200);
}

function list() {
  const res = http.get(`${cfg.gateway}/v1/refunds?limit=20`, { headers: authOnly, timeout: cfg.timeout });
  record('list', res, res.status === 200);
}

// provider is the same refund sent straight to the Checkout.com simulator
// with the raw secret key, as the adapter sends it.
function provider() {
  const p = pick(payments);
  // trackId is at most 50 characters at Checkout.com.
  const body = `{"value":${cfg.amount},"trackId":"${cfg.track_prefix}${__VU}-${__ITER}"}`;
  const res = http.post(`${cfg.sandbox}/checkoutcom/v2/charges/${p}/refund`, body, {
    headers: { 'Content-Type': 'application/json', Authorization: cfg.provider_key },
    timeout: cfg.timeout,
  });
  record('provider', res, res.status === 200 || res.status === 201);
}

const ops = { create: create, replay: replay, get: get, list: list, provider: provider };

// cfg.mix is [[op, weight], …]; the weights sum to 1.
export default function () {
  if (cfg.mix.length === 1) {
    ops[cfg.mix[0][0]]();
    return;
  }
  let x = Math.random();
  for (const [op, w] of cfg.mix) {
    if (x < w) {
      ops[op]();
      return;
    }
    x -= w;
  }
  ops[cfg.mix[cfg.mix.length - 1][0]]();
}

export function handleSummary(data) {
  return { [cfg.summary_path]: JSON.stringify(data) };
}
