// The real vigil daemon on a demo-like config for the browser tests and the page benchmark:
// the simulated feed and bot, the demo's checks and rules, three users (admin, operator,
// viewer), a fixed JWT secret so sessions survive a restart, a temp data_dir.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.VIGIL_BIN || resolve(here, "../../target/debug/vigil");

export const USERS = { admin: "admin-pw-1", oscar: "oscar-pw-1", vera: "vera-pw-1" };

function hash(pw) {
  return execFileSync(BIN, ["hash-password"], { input: `${pw}\n` }).toString().trim().split("\n").pop();
}

async function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
    s.on("error", rej);
  });
}

export async function makeConfig({ ttl = "30m", extra = "" } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "vigil-page-"));
  const port = await freePort();
  const q = (s) => JSON.stringify(s);
  const toml = `
[vigil]
listen = "127.0.0.1:${port}"
data_dir = ${q(join(dir, "data"))}
log_level = "info"

[program.feed]
command = ${q(`${BIN} sim feed --interval-ms 250`)}
priority = 10
startsecs = 1
events = "stdout"

[program.bot]
command = ${q(`${BIN} sim bot`)}
priority = 20
startsecs = 1
autorestart = true
events = "stdout"
critical = true

[checks.market_data]
kind = "freshness"
pairs = ["BTC/USD", "ETH/USD", "SOL/USD"]
threshold_s = 3
grace_s = 15

[checks.bot_heartbeat]
kind = "heartbeat"
sources = ["bot"]
period_s = 2
grace_s = 5

[checks.host_ram]
kind = "host"
metric = "ram"
warn_pct = 98
critical_pct = 99
sustain_s = 60
action = "warn"

[rules.drawdown]
warn_pct = 20
critical_pct = 50

[halt]
position_behavior = "maintain"

[auth]
jwt_secret = "page-tests-0123456789abcdef-0123456789"
token_ttl = ${q(ttl)}
login_attempts_per_minute = 100

[[auth.users]]
name = "admin"
role = "admin"
password_hash = ${q(hash(USERS.admin))}

[[auth.users]]
name = "oscar"
role = "operator"
password_hash = ${q(hash(USERS.oscar))}

[[auth.users]]
name = "vera"
role = "viewer"
password_hash = ${q(hash(USERS.vera))}

# Jobs: a backtest that reports progress for 5 s, and a long one to cancel.
[jobs]
dev_mode = true
# Admit by the ledger only: other builds load this machine's CPU to 100 %.
check_measured = false

[jobs.types.backtest]
cpu_cores = 0.1
ram_gb = 0.05
pausable = false
command = ["/bin/sh", ${q(join(dir, "backtest.sh"))}, "{symbol}"]

[jobs.types.backtest.params.symbol]
enum = ["BTC/USD", "ETH/USD"]
default = "BTC/USD"

[jobs.types.prediction]
cpu_cores = 0.1
ram_gb = 0.05
pausable = false
command = ["/bin/sleep", "{secs}"]

[jobs.types.prediction.params.secs]
pattern = "[0-9]{1,4}"
default = "600"
${extra}
`;
  writeFileSync(join(dir, "backtest.sh"), [
    'for i in 1 2 3 4 5; do',
    '  echo "VIGIL_PROGRESS {\\"description\\": \\"$1: day $i of 5\\", \\"percent\\": $((i * 20))}"',
    '  sleep 1',
    'done',
  ].join("\n") + "\n");
  const path = join(dir, "vigil.toml");
  writeFileSync(path, toml);
  return { dir, port, path, url: `http://127.0.0.1:${port}` };
}

/** Start `vigil run` on the config; resolves when the readiness line is printed. */
export function startDaemon(cfg) {
  return new Promise((res, rej) => {
    const child = spawn(BIN, ["run", "-c", cfg.path], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const timer = setTimeout(() => rej(new Error(`vigil did not get ready in 60 s:\n${out}`)), 60000);
    const onData = (b) => {
      out += b.toString();
      if (out.includes("vigil: listening on")) { clearTimeout(timer); res(child); }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => { clearTimeout(timer); rej(new Error(`vigil exited (${code}) before ready:\n${out}`)); });
    child.logText = () => out;
  });
}

export function stopDaemon(child) {
  return new Promise((res) => {
    if (!child || child.exitCode !== null) return res();
    child.removeAllListeners("exit");
    child.on("exit", () => res());
    child.kill("SIGTERM");
    setTimeout(() => { if (child.exitCode === null) child.kill("SIGKILL"); }, 20000);
  });
}

/** A bearer token for direct API calls (the test's own, not the page's). */
export async function loginToken(url, user) {
  const r = await fetch(`${url}/api/auth/login`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: user, password: USERS[user] }),
  });
  if (r.status !== 200) throw new Error(`login ${user}: ${r.status} ${await r.text()}`);
  return (await r.json()).token;
}

export async function call(url, token, method, path, body) {
  const r = await fetch(`${url}${path}`, {
    method, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch { data = text; }
  return { status: r.status, data, headers: r.headers };
}
