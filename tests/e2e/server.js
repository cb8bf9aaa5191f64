// Starts a real `yeyak serve` for the browser tests: the built binary, the embedded log in a
// temporary --data directory, a fixed starting --clock, an admin token, loopback on a free port.
const { spawn } = require("child_process");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");

// 32 random bytes as hex: a server refuses an admin token shorter than 32 bytes.
const ADMIN_TOKEN = require("crypto").randomBytes(32).toString("hex");

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startServer({ clock, logFile, extraArgs = [] }) {
  const bin = process.env.YEYAK_BIN;
  if (!bin || !fs.existsSync(bin)) throw new Error(`YEYAK_BIN must name the built yeyak binary (got ${bin})`);
  const port = await freePort();
  const data = fs.mkdtempSync(path.join(os.tmpdir(), "yeyak-e2e-"));
  const base = `http://127.0.0.1:${port}`;
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const log = fs.openSync(logFile, "w");
  const args = ["serve", "--listen", `127.0.0.1:${port}`, "--clock", clock, "--admin-token", ADMIN_TOKEN, "--data", data, ...extraArgs];
  // The embedded log only: scripts/test exports the services' addresses, which would put this
  // server on the shared Kafka topics (and a second run on the first one's people).
  const env = { ...process.env, YEYAK_LOG: process.env.YEYAK_LOG || "info" };
  delete env.YEYAK_KAFKA;
  delete env.YEYAK_POSTGRES;
  const child = spawn(bin, args, { stdio: ["ignore", log, log], env });
  const pidFile = path.join(path.dirname(logFile), "server.pid");
  fs.writeFileSync(pidFile, String(child.pid));
  let exited = null;
  child.on("exit", (code, signal) => { exited = { code, signal }; });

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`yeyak serve exited early (${JSON.stringify(exited)}); see ${logFile}`);
    try {
      const res = await fetch(base + "/v1/congestion");
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`yeyak serve did not answer on ${base} within 60 s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  async function admin(pathname, body) {
    const res = await fetch(base + pathname, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`POST ${pathname} ${JSON.stringify(body)} -> ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  async function stop() {
    if (exited) return exited;
    const done = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const result = await done;
    clearTimeout(timer);
    fs.rmSync(pidFile, { force: true });
    fs.closeSync(log);
    fs.rmSync(data, { recursive: true, force: true });
    return result;
  }

  // People who verified and queued a moment before the person under test (through the API,
  // as other browsers would): they make the waiting room show a real line.
  async function crowd(count, birth) {
    await Promise.all(Array.from({ length: count }, async (_, i) => {
      const post = async (pathname, body, token) => {
        const headers = { "Content-Type": "application/json" };
        if (token) headers.Authorization = `Bearer ${token}`;
        const res = await fetch(base + pathname, { method: "POST", headers, body: body && JSON.stringify(body) });
        const text = await res.text();
        if (!res.ok) throw new Error(`crowd: POST ${pathname} -> ${res.status} ${text}`);
        return JSON.parse(text);
      };
      const verified = await post("/v1/verify", {
        method: "kakao", resident_id: residentId(birth.year, birth.month, birth.day, 50000 + i),
        name: `crowd-${i}`, device_id: `crowd-device-${i}`,
      });
      return post("/v1/queue", undefined, verified.session_token);
    }));
  }

  // One person who verifies, queues, waits for the admission (polling, as a page would) and
  // books `clinic_id` on `date` through the API: the reservation's body.
  async function book({ birth, serial, clinic_id, date }) {
    const call = async (method, pathname, token, body) => {
      const headers = {};
      if (token) headers.Authorization = `Bearer ${token}`;
      if (body) headers["Content-Type"] = "application/json";
      const res = await fetch(base + pathname, { method, headers, body: body && JSON.stringify(body) });
      const text = await res.text();
      if (!res.ok) throw new Error(`book: ${method} ${pathname} -> ${res.status} ${text}`);
      return JSON.parse(text);
    };
    const verified = await call("POST", "/v1/verify", null, {
      method: "kakao", resident_id: residentId(birth.year, birth.month, birth.day, serial),
      name: `booker-${serial}`, device_id: `booker-device-${serial}`,
    });
    const session = verified.session_token;
    const queued = await call("POST", "/v1/queue", session);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const q = await call("GET", `/v1/queue/${queued.ticket}`, session);
      if (q.admission_token) return call("POST", "/v1/reservations", q.admission_token, { clinic_id, date });
      if (q.state !== "waiting") throw new Error(`book: the ticket is ${q.state}`);
      if (Date.now() > deadline) throw new Error("book: not admitted within 60 s");
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  return { base, admin, adminToken: ADMIN_TOKEN, book, crowd, stop, child };
}

// A valid resident registration number for a birth date (the check digit computed as in
// src/identity.rs `ResidentNumber::synthesize`).
function residentId(year, month, day, serial, female = false) {
  const century = year >= 2000 ? (female ? 4 : 3) : (female ? 2 : 1);
  const pad = (n, w) => String(n).padStart(w, "0");
  const head = pad(year % 100, 2) + pad(month, 2) + pad(day, 2) + century + pad(serial % 100000, 5);
  const weights = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
  const sum = [...head].reduce((s, d, i) => s + Number(d) * weights[i], 0);
  const check = (11 - (sum % 11)) % 10;
  return `${head.slice(0, 6)}-${head.slice(6)}${check}`;
}

module.exports = { startServer, residentId };
