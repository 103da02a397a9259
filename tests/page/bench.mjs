// The Status Center benchmark (scripts/bench-page; figures in BENCHMARKS.md):
//  (a) halt request → banner changed in the browser, over repeated halts and resumes sent by
//      another client (the page learns it over SSE), side by side with the machine's floor
//      (the round trip of the same POST) and with the page's 2 s polling fallback (the
//      seed's design, what a polling dashboard gets);
//  (b) the page's transfer size, compressed and raw;
//  (c) the event rate the open page keeps up with: bursts of stored events at rising rates,
//      how far behind the page is when the burst ends and how long it takes to catch up.
//
// Knobs: BENCH_HALTS (40 round trips = 80 transitions), BENCH_POLL_HALTS (10),
// BENCH_RATES ("250,1000,2000,4000,8000"), BENCH_BURST_S (5).

import { chromium } from "playwright-core";
import { makeConfig, startDaemon, stopDaemon, loginToken, call, USERS } from "./daemon.mjs";
import { LAUNCH, sleep, until } from "./run.mjs";

const N = Number(process.env.BENCH_HALTS || 40);
const NPOLL = Number(process.env.BENCH_POLL_HALTS || 10);
const RATES = (process.env.BENCH_RATES || "250,1000,2000,4000,8000").split(",").map(Number);
const BURST_S = Number(process.env.BENCH_BURST_S || 5);

const now = () => performance.timeOrigin + performance.now();

/** Nearest-rank percentile. */
function pct(sorted, p) {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}
function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s[s.length - 1] };
}
const f = (x) => x.toFixed(1);

async function openPage(browser, url, { blockStream = false } = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  if (blockStream) await page.route("**/api/events/stream**", (r) => r.abort());
  await page.goto(`${url}/`);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(USERS.admin);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("region", { name: "Trading state" }).waitFor();
  const want = blockStream ? /Polling/ : /^Live$/;
  await until("connected", async () => want.test(await page.locator("#conn-text").textContent()), 60000);
  // Record when the state word changes, on the same clock as this process (wall time, ms).
  await page.evaluate(() => {
    window.__changes = [];
    const el = document.getElementById("state-word");
    new MutationObserver(() => window.__changes.push({ at: performance.timeOrigin + performance.now(), text: el.textContent }))
      .observe(el, { childList: true, characterData: true, subtree: true });
  });
  return { ctx, page };
}

async function haltLatency(page, url, token, n) {
  const banner = [], rtt = [], own = [];
  for (let i = 0; i < n * 2; i++) {
    const halt = i % 2 === 0;
    const want = halt ? "HALTED" : "ACTIVE";
    const before = await page.evaluate(() => window.__changes.length);
    await sleep(50 + Math.random() * 100); // de-phase from pings and polls
    const t0 = now();
    const r = await call(url, token, "POST", halt ? "/api/trading/halt" : "/api/trading/resume", { reason: `bench ${i}` });
    const t1 = now();
    if (r.status !== 200) throw new Error(`${want}: ${r.status} ${JSON.stringify(r.data)}`);
    rtt.push(t1 - t0);
    const c = await until(`banner ${want}`, async () => {
      const ch = await page.evaluate((b) => window.__changes.slice(b), before);
      return ch.find((x) => x.text === want);
    }, 30000);
    banner.push(c.at - t0);
    own.push(c.at - t1);
  }
  return { banner: stats(banner), rtt: stats(rtt), own: stats(own) };
}

async function transferSize(url) {
  const files = ["/", "/assets/app.css", "/assets/app.js", "/assets/ui.js", "/assets/jobs.js"];
  let gz = 0, raw = 0;
  for (const p of files) {
    const a = await fetch(`${url}${p}`, { headers: { "Accept-Encoding": "gzip" } });
    gz += Number(a.headers.get("content-length") || (await a.arrayBuffer()).byteLength);
    const b = await fetch(`${url}${p}`, { headers: { "Accept-Encoding": "identity" } });
    raw += (await b.arrayBuffer()).byteLength;
  }
  return { files: files.length, gz, raw };
}

async function eventRate(page, url, token, rate) {
  const lastServer = async () => (await call(url, token, "GET", "/api/events?last=1")).data.last_seq;
  const pageSeq = () => page.evaluate(() => window.vigilPage.lastSeq());
  const start = await lastServer();
  await until("page caught up before the burst", async () => (await pageSeq()) >= start, 30000);
  // Batches every 20 ms, sent on schedule without waiting for the previous acknowledgement
  // (at most 16 in flight), so the sender is not what limits the rate.
  const tick = 20, perTick = Math.max(1, Math.round((rate * tick) / 1000));
  const ticks = Math.round((BURST_S * 1000) / tick);
  const t0 = now();
  let sent = 0, acked = 0, maxLag = 0, inflight = [], sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [s, p] = [await lastServer(), await pageSeq()];
      maxLag = Math.max(maxLag, s - p);
      await sleep(250);
    }
  })();
  for (let i = 0; i < ticks; i++) {
    const body = Array.from({ length: perTick }, (_, k) => JSON.stringify({ type: "log", level: "info", message: `rate ${rate} ${i}.${k}` })).join("\n");
    if (inflight.length >= 16) await Promise.race(inflight);
    const pr = fetch(`${url}/api/events`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body })
      .then(async (r) => { await r.arrayBuffer(); if (r.status !== 202) throw new Error(`ingest ${r.status}`); acked += perTick; })
      .finally(() => { inflight = inflight.filter((x) => x !== pr); });
    inflight.push(pr);
    sent += perTick;
    const wait = t0 + (i + 1) * tick - now();
    if (wait > 0) await sleep(wait);
  }
  await Promise.all(inflight);
  const t1 = now();
  sampling = false;
  await sampler;
  const end = await lastServer();
  const lagAtEnd = end - (await pageSeq());
  await until("page caught up", async () => (await pageSeq()) >= end, 120000);
  const caughtUp = now() - t1;
  const achieved = acked / ((t1 - t0) / 1000);
  return { rate, achieved, sent: acked, maxLag: Math.max(maxLag, lagAtEnd), lagAtEnd, caughtUp };
}

async function main() {
  const cfg = await makeConfig();
  const daemon = await startDaemon(cfg);
  const token = await loginToken(cfg.url, "admin");
  const browser = await chromium.launch(LAUNCH);
  try {
    console.log(`vigil: ${process.env.VIGIL_BIN || "target/debug/vigil"}; chromium: ${LAUNCH.executablePath}`);
    const live = await openPage(browser, cfg.url);
    const a = await haltLatency(live.page, cfg.url, token, N);
    await live.ctx.close();
    const polled = await openPage(browser, cfg.url, { blockStream: true });
    const b = await haltLatency(polled.page, cfg.url, token, NPOLL);
    await polled.ctx.close();
    const size = await transferSize(cfg.url);
    const rp = await openPage(browser, cfg.url);
    const rates = [];
    for (const r of RATES) rates.push(await eventRate(rp.page, cfg.url, token, r));
    await rp.ctx.close();

    console.log("\n### (a) halt request → banner changed in the browser (ms)\n");
    console.log("| case | n | p50 | p95 | p99 | max | p50 / floor |");
    console.log("|---|---|---|---|---|---|---|");
    const row = (name, s, floor) => console.log(`| ${name} | ${s.n} | ${f(s.p50)} | ${f(s.p95)} | ${f(s.p99)} | ${f(s.max)} | ${(s.p50 / floor).toFixed(2)} |`);
    row("floor: the POST's own round trip", a.rtt, a.rtt.p50);
    row("page over SSE (vigil)", a.banner, a.rtt.p50);
    row("page polling every 2 s (seed 004's design)", b.banner, a.rtt.p50);
    console.log(`\nBanner changed relative to the POST's answer arriving (negative: before it): p50 ${f(a.own.p50)}, p95 ${f(a.own.p95)}, p99 ${f(a.own.p99)} ms over SSE.`);
    console.log("\n### (b) transfer size of the page\n");
    console.log(`| files | gzip bytes | raw bytes |\n|---|---|---|\n| ${size.files} | ${size.gz} | ${size.raw} |`);
    console.log("\n### (c) event rate the open page keeps up with\n");
    console.log("| offered events/s | achieved events/s | events | max behind (events) | behind at burst end | caught up after (ms) |");
    console.log("|---|---|---|---|---|---|");
    for (const r of rates) console.log(`| ${r.rate} | ${f(r.achieved)} | ${r.sent} | ${Math.max(0, r.maxLag)} | ${Math.max(0, r.lagAtEnd)} | ${f(r.caughtUp)} |`);
  } finally {
    await browser.close();
    await stopDaemon(daemon);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
