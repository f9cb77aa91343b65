#!/usr/bin/env node
// node_resolve.js -- the Node baseline: dns.promises.Resolver (c-ares
// inside Node) doing resolveMx, then resolve4 of each MX target, for every
// domain of the list.
//
// Concurrency: W async workers (default 100), each with at most one query
// in flight (the targets of a domain are resolved one after the other), so
// at most W queries are in flight, the same window as the other clients.
// --parallel-targets resolves a domain's targets with Promise.all instead
// (up to 2W queries in flight).
// Resolver settings as in mxroute: timeout 2000 ms, 2 tries.
//
// Usage: node node_resolve.js --server IP:PORT --list FILE [-n N] [-w W]
// Prints: RESULT node domains=... ok=... seconds=... dps=...
'use strict';
const fs = require('fs');
const { Resolver } = require('dns').promises;

function parseArgs(argv) {
  const a = { w: 100, n: 0, parallel: false };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--server') a.server = argv[++i];
    else if (k === '--list') a.list = argv[++i];
    else if (k === '-n') a.n = parseInt(argv[++i], 10);
    else if (k === '-w') a.w = parseInt(argv[++i], 10);
    else if (k === '--parallel-targets') a.parallel = true;
    else throw new Error('unknown argument ' + k);
  }
  if (!a.server || !a.list || !(a.w > 0)) {
    console.error('usage: node_resolve.js --server IP:PORT --list FILE [-n N] [-w W] [--parallel-targets]');
    process.exit(2);
  }
  return a;
}

async function main() {
  const args = parseArgs(process.argv);
  let names = fs.readFileSync(args.list, 'utf8').split('\n').filter(Boolean);
  if (args.n > 0 && args.n < names.length) names = names.slice(0, args.n);
  const r = new Resolver({ timeout: 2000, tries: 2 });
  r.setServers([args.server]);

  let next = 0, ok = 0, failed = 0, queries = 0;
  async function routeOne(name) {
    queries++;
    const mx = await r.resolveMx(name);
    let addrs = 0;
    if (args.parallel) {
      queries += mx.length;
      const res = await Promise.all(mx.map((m) => r.resolve4(m.exchange)));
      for (const a of res) addrs += a.length;
    } else {
      for (const m of mx) {
        queries++;
        addrs += (await r.resolve4(m.exchange)).length;
      }
    }
    return addrs;
  }
  async function worker() {
    while (next < names.length) {
      const name = names[next++];
      try {
        if ((await routeOne(name)) > 0) ok++;
        else failed++;
      } catch (e) {
        failed++;
      }
    }
  }
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: args.w }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  console.log(
    `RESULT node domains=${names.length} ok=${ok} failed=${failed} ` +
    `queries=${queries} window=${args.w} parallel_targets=${args.parallel ? 1 : 0} ` +
    `seconds=${secs.toFixed(3)} dps=${(names.length / secs).toFixed(0)} ` +
    `qps=${(queries / secs).toFixed(0)} cpu_s=${cpuS.toFixed(3)} ` +
    `cpu_us_per_domain=${(cpuS * 1e6 / names.length).toFixed(2)}`);
  process.exit(ok === names.length ? 0 : 1);
}

main().catch((e) => { console.error(e); process.exit(1); });
