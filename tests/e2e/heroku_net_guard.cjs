// A network guard for the official Heroku CLI in tests/e2e/test_heroku_cli.py, preloaded with
// NODE_OPTIONS="--require <this file>" so that it also reaches the CLI's detached workers and
// the `heroku git:credentials` helper that git starts.
//
// Every attempted connection and DNS lookup is appended to the file named by
// HEROKU_NET_GUARD_LOG, one JSON object per line:
//   {"pid", "kind": "connect"|"tls"|"lookup", "host", "port", "allowed", "argv"}
// Hosts other than 127.0.0.1, ::1 and localhost are refused: the socket is destroyed with an
// EACCES error and the lookup fails, so a leak both fails the command and shows in the log.
// Unix-socket connects (a path, no host) are allowed and not logged.
"use strict";

const dns = require("node:dns");
const fs = require("node:fs");
const net = require("node:net");
const tls = require("node:tls");

const LOG = process.env.HEROKU_NET_GUARD_LOG;
const LOCAL = new Set(["127.0.0.1", "::1", "localhost"]);

function record(kind, host, port, allowed) {
  if (!LOG) return;
  const entry = { pid: process.pid, kind, host, port, allowed, argv: process.argv.slice(1, 4) };
  try {
    fs.appendFileSync(LOG, JSON.stringify(entry) + "\n");
  } catch (err) {
    process.stderr.write(`heroku_net_guard: cannot write ${LOG}: ${err.message}\n`);
  }
}

function refusal(kind, host, port) {
  const err = new Error(`heroku_net_guard: refused ${kind} to ${host}:${port} (not local)`);
  err.code = "EACCES";
  err.syscall = kind;
  err.hostname = host;
  return err;
}

// Socket#connect(options[, cb]), (path[, cb]), (port[, host][, cb]), or, from net.connect and
// tls.connect, ([options, cb]) already normalised into an array.
function target(args) {
  let first = args[0];
  if (Array.isArray(first)) first = first[0];
  if (first !== null && typeof first === "object") {
    if (first.path) return null;
    return { host: first.host || "localhost", port: first.port };
  }
  if (typeof first === "string" && !/^\d+$/.test(first)) return null; // a Unix socket path
  const host = typeof args[1] === "string" ? args[1] : "localhost";
  return { host, port: first };
}

const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  const to = target(args);
  if (to === null) return originalConnect.apply(this, args);
  const allowed = LOCAL.has(to.host);
  record("connect", to.host, to.port, allowed);
  if (!allowed) {
    process.nextTick(() => this.destroy(refusal("connect", to.host, to.port)));
    return this;
  }
  return originalConnect.apply(this, args);
};

// tls.connect ends in Socket#connect (checked above) unless it wraps an existing socket; it is
// recorded on its own so the log names TLS targets too.
const originalTlsConnect = tls.connect;
tls.connect = function guardedTlsConnect(...args) {
  const first = args[0];
  let to = null;
  if (first !== null && typeof first === "object" && !first.path && !first.socket) {
    to = { host: first.host || "localhost", port: first.port };
  } else if (typeof first === "number" || /^\d+$/.test(String(first))) {
    to = { host: typeof args[1] === "string" ? args[1] : "localhost", port: first };
  }
  if (to !== null) record("tls", to.host, to.port, LOCAL.has(to.host));
  return originalTlsConnect.apply(this, args);
};

const originalLookup = dns.lookup;
dns.lookup = function guardedLookup(hostname, options, callback) {
  const cb = typeof options === "function" ? options : callback;
  const allowed = LOCAL.has(hostname);
  record("lookup", hostname, null, allowed);
  if (!allowed && typeof cb === "function") {
    const err = refusal("lookup", hostname, null);
    err.code = "ENOTFOUND";
    process.nextTick(() => cb(err));
    return {};
  }
  return originalLookup.call(this, hostname, options, callback);
};

const originalPromisesLookup = dns.promises.lookup;
dns.promises.lookup = function guardedPromisesLookup(hostname, options) {
  const allowed = LOCAL.has(hostname);
  record("lookup", hostname, null, allowed);
  if (!allowed) {
    const err = refusal("lookup", hostname, null);
    err.code = "ENOTFOUND";
    return Promise.reject(err);
  }
  return originalPromisesLookup.call(this, hostname, options);
};
