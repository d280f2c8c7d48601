'use strict';
// The reference service (README.md beside it): a runnable example of the contract every Node.js
// app of the platform follows (gateway, customer, product, order, cart, website content,
// frontend, backoffice), which the dev stack runs where an app's own image is not configured and
// the tests use for every app. It honours the environment contract the Pulumi program sets,
// logs each request, and its GET /health is only 200 when the service could really work: the JWT secret file
// is readable and non-empty, the database (if configured) accepts the credentials and answers
// SELECT 1, and Redis (if configured) accepts AUTH (if a password file is given) and PINGs.
// Node's standard library only: the PostgreSQL wire protocol (SCRAM-SHA-256, MD5, cleartext) and
// the few Redis commands are implemented below.

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');

const { forward } = require('./upstream');

const env = process.env;
const SERVICE_NAME = env.SERVICE_NAME || 'service';
const PORT = Number.parseInt(env.PORT || '3000', 10);
const CHECK_TIMEOUT_MS = 3000;
const HEALTH_CACHE_MS = 2000;

function log(message) {
  process.stdout.write(`${new Date().toISOString()} ${SERVICE_NAME}: ${message}\n`);
}

function readSecretFile(variable) {
  const path = env[variable];
  if (!path) throw new Error(`${variable} is not set`);
  let value;
  try {
    value = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${variable}: cannot read ${path} (${err.code || err.message})`);
  }
  value = value.replace(/\r?\n$/, '');
  if (value.length === 0) throw new Error(`${variable}: ${path} is empty`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// A connection that reads whole protocol messages, with one deadline for the whole exchange.

function withSocket(host, port, exchange) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let buffer = Buffer.alloc(0);
    let waiter = null;
    let finished = false;
    const finish = (err, value) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(
      () => finish(new Error(`no answer from ${host}:${port} within ${CHECK_TIMEOUT_MS} ms`)),
      CHECK_TIMEOUT_MS,
    );
    const pump = () => {
      if (waiter) waiter();
    };
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      pump();
    });
    socket.on('error', (err) => finish(new Error(`${host}:${port}: ${err.code || err.message}`)));
    socket.on('close', () => finish(new Error(`${host}:${port} closed the connection`)));
    // take(parse): wait until parse(buffer) returns [value, consumedBytes], not null.
    const take = (parse) =>
      new Promise((res) => {
        waiter = () => {
          const parsed = parse(buffer);
          if (parsed === null) return;
          buffer = buffer.subarray(parsed[1]);
          waiter = null;
          res(parsed[0]);
        };
        pump();
      });
    socket.on('connect', () => {
      exchange({ write: (data) => socket.write(data), take }).then(
        (value) => finish(null, value),
        (err) => finish(err),
      );
    });
  });
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL (protocol 3.0): startup, authentication, SELECT 1.

function pgMessage(type, body) {
  const header = Buffer.alloc(type ? 5 : 4);
  if (type) {
    header.write(type, 0, 'latin1');
    header.writeInt32BE(body.length + 4, 1);
  } else {
    header.writeInt32BE(body.length + 4, 0);
  }
  return Buffer.concat([header, body]);
}

function cstring(text) {
  return Buffer.from(`${text}\0`, 'utf8');
}

function parsePgMessage(buf) {
  if (buf.length < 5) return null;
  const length = buf.readInt32BE(1);
  if (buf.length < 1 + length) return null;
  return [{ type: String.fromCharCode(buf[0]), body: buf.subarray(5, 1 + length) }, 1 + length];
}

function pgErrorText(body) {
  const fields = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]);
    const end = body.indexOf(0, i + 1);
    fields[code] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return `${fields.S || 'ERROR'} ${fields.C || ''}: ${fields.M || 'unknown error'}`;
}

const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
const sha256 = (data) => crypto.createHash('sha256').update(data).digest();

function scramClientProof(password, serverFirst, clientFirstBare) {
  const attrs = Object.fromEntries(
    serverFirst.split(',').map((kv) => [kv.slice(0, 1), kv.slice(2)]),
  );
  const nonce = attrs.r;
  const salt = Buffer.from(attrs.s || '', 'base64');
  const iterations = Number.parseInt(attrs.i || '', 10);
  if (!nonce || salt.length === 0 || !(iterations > 0)) {
    throw new Error('database: malformed SCRAM server-first message');
  }
  const clientNonce = clientFirstBare.split('r=')[1];
  if (!nonce.startsWith(clientNonce)) throw new Error('database: SCRAM server nonce mismatch');
  const saltedPassword = crypto.pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = hmac(saltedPassword, 'Client Key');
  const storedKey = sha256(clientKey);
  const clientFinalWithoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${nonce}`;
  const authMessage = `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
  const clientSignature = hmac(storedKey, authMessage);
  const proof = Buffer.alloc(clientKey.length);
  for (let i = 0; i < proof.length; i += 1) proof[i] = clientKey[i] ^ clientSignature[i];
  const serverSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage).toString('base64');
  return { clientFinal: `${clientFinalWithoutProof},p=${proof.toString('base64')}`, serverSignature };
}

async function checkDatabase() {
  const host = env.DATABASE_HOST;
  const port = Number.parseInt(env.DATABASE_PORT || '5432', 10);
  const database = env.DATABASE_NAME;
  const user = env.DATABASE_USER;
  if (!database || !user) throw new Error('database: DATABASE_NAME and DATABASE_USER must be set');
  let password;
  try {
    password = readSecretFile('DATABASE_PASSWORD_FILE');
  } catch (err) {
    throw new Error(`database: ${err.message}`);
  }
  return withSocket(host, port, async (conn) => {
    const params = Buffer.concat([
      Buffer.from([0, 3, 0, 0]), // protocol 3.0
      cstring('user'), cstring(user),
      cstring('database'), cstring(database),
      cstring('application_name'), cstring(`${SERVICE_NAME}-health`),
      Buffer.from([0]),
    ]);
    conn.write(pgMessage(null, params));
    let scram = null;
    for (;;) {
      const msg = await conn.take(parsePgMessage);
      if (msg.type === 'E') throw new Error(`database: ${pgErrorText(msg.body)}`);
      if (msg.type === 'Z') break; // ReadyForQuery: authenticated
      if (msg.type !== 'R') continue; // ParameterStatus, BackendKeyData, NoticeResponse
      const code = msg.body.readInt32BE(0);
      if (code === 0) continue; // AuthenticationOk
      if (code === 3) {
        conn.write(pgMessage('p', cstring(password)));
      } else if (code === 5) {
        const salt = msg.body.subarray(4, 8);
        const inner = crypto.createHash('md5').update(password + user).digest('hex');
        const outer = crypto.createHash('md5').update(Buffer.concat([Buffer.from(inner), salt]));
        conn.write(pgMessage('p', cstring(`md5${outer.digest('hex')}`)));
      } else if (code === 10) {
        const mechanisms = msg.body.toString('utf8', 4).split('\0');
        if (!mechanisms.includes('SCRAM-SHA-256')) {
          throw new Error(`database: unsupported SASL mechanisms ${mechanisms.join(' ')}`);
        }
        const clientFirstBare = `n=,r=${crypto.randomBytes(18).toString('base64')}`;
        scram = { clientFirstBare };
        const first = Buffer.from(`n,,${clientFirstBare}`, 'utf8');
        const length = Buffer.alloc(4);
        length.writeInt32BE(first.length, 0);
        conn.write(pgMessage('p', Buffer.concat([cstring('SCRAM-SHA-256'), length, first])));
      } else if (code === 11) {
        const serverFirst = msg.body.toString('utf8', 4);
        const { clientFinal, serverSignature } = scramClientProof(
          password, serverFirst, scram.clientFirstBare,
        );
        scram.serverSignature = serverSignature;
        conn.write(pgMessage('p', Buffer.from(clientFinal, 'utf8')));
      } else if (code === 12) {
        const serverFinal = msg.body.toString('utf8', 4);
        if (serverFinal !== `v=${scram.serverSignature}`) {
          throw new Error('database: the server did not prove it knows the password (SCRAM)');
        }
      } else {
        throw new Error(`database: unsupported authentication request ${code}`);
      }
    }
    conn.write(pgMessage('Q', cstring('SELECT 1')));
    let value = null;
    for (;;) {
      const msg = await conn.take(parsePgMessage);
      if (msg.type === 'E') throw new Error(`database: ${pgErrorText(msg.body)}`);
      if (msg.type === 'D') {
        const length = msg.body.readInt32BE(2);
        value = msg.body.toString('utf8', 6, 6 + length);
      }
      if (msg.type === 'Z') break;
    }
    conn.write(pgMessage('X', Buffer.alloc(0)));
    if (value !== '1') throw new Error(`database: SELECT 1 returned ${value}`);
    return `ok (${user}@${host}:${port}/${database})`;
  });
}

// ---------------------------------------------------------------------------------------------
// Redis (RESP): optional AUTH, then PING.

function respCommand(...args) {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return parts.join('');
}

function parseRespLine(buf) {
  const end = buf.indexOf('\r\n');
  if (end < 0) return null;
  return [buf.toString('utf8', 0, end), end + 2];
}

async function checkRedis() {
  const host = env.REDIS_HOST;
  const port = Number.parseInt(env.REDIS_PORT || '6379', 10);
  let password = null;
  if (env.REDIS_PASSWORD_FILE) {
    try {
      password = readSecretFile('REDIS_PASSWORD_FILE');
    } catch (err) {
      throw new Error(`redis: ${err.message}`);
    }
  }
  return withSocket(host, port, async (conn) => {
    if (password !== null) {
      conn.write(respCommand('AUTH', password));
      const reply = await conn.take(parseRespLine);
      if (reply !== '+OK') throw new Error(`redis: AUTH refused: ${reply.replace(/^-/, '')}`);
    }
    conn.write(respCommand('PING'));
    const reply = await conn.take(parseRespLine);
    if (reply !== '+PONG') throw new Error(`redis: PING answered ${reply.replace(/^-/, '')}`);
    return `ok (${host}:${port})`;
  });
}

// ---------------------------------------------------------------------------------------------
// Health, cached so that frequent health checks stay cheap.

async function runChecks() {
  const checks = {};
  const failures = [];
  // Only services that verify tokens get the JWT secret; the web apps get none.
  if (env.JWT_SECRET_FILE) {
    try {
      readSecretFile('JWT_SECRET_FILE');
      checks.jwt = 'ok';
    } catch (err) {
      checks.jwt = err.message;
      failures.push(`jwt: ${err.message}`);
    }
  }
  const pending = [];
  if (env.DATABASE_HOST) pending.push(['database', checkDatabase]);
  if (env.REDIS_HOST) pending.push(['redis', checkRedis]);
  const results = await Promise.allSettled(pending.map(([, check]) => check()));
  results.forEach((result, i) => {
    const name = pending[i][0];
    if (result.status === 'fulfilled') {
      checks[name] = result.value;
    } else {
      checks[name] = result.reason.message;
      failures.push(result.reason.message);
    }
  });
  return { healthy: failures.length === 0, checks, reason: failures.join('; ') };
}

let cached = null; // { at, promise }
function health() {
  const now = Date.now();
  if (!cached || now - cached.at > HEALTH_CACHE_MS) {
    cached = { at: now, promise: runChecks() };
  }
  return cached.promise;
}

// ---------------------------------------------------------------------------------------------
// HTTP: /health, /, and (gateway) /<upstream>/<path> proxied to the upstream.

function parseUpstreams(text) {
  const upstreams = new Map();
  for (const pair of (text || '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`UPSTREAMS: "${pair}" is not name=http://host:port`);
    upstreams.set(pair.slice(0, eq), new URL(pair.slice(eq + 1)));
  }
  return upstreams;
}

const upstreams = parseUpstreams(env.UPSTREAMS);
const corsOrigins = new Set(
  (env.CORS_ORIGINS || '').split(',').map((s) => s.trim()).filter(Boolean),
);

function securityHeaders(req, res) {
  // The few headers Helmet sets by default that matter for an API.
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'SAMEORIGIN');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  const origin = req.headers.origin;
  if (origin && corsOrigins.has(origin)) {
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Vary', 'Origin');
  }
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

// The gateway's proxy: the request's body is read whole first (it may be sent to more than one
// address while an upstream is being replaced: upstream.js), then the answer is streamed back.
const MAX_BODY_BYTES = 1024 * 1024;

function proxy(req, res, target, rest) {
  const url = new URL(target.pathname.replace(/\/$/, '') + rest, target);
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      sendJson(res, 413, { error: 'request body too large' });
      req.destroy();
    } else {
      chunks.push(chunk);
    }
  });
  req.on('end', () => {
    const request = { url, method: req.method, headers: req.headers, body: Buffer.concat(chunks) };
    forward(request, (err, answer, tried) => {
      if (err) {
        log(`upstream ${url.host} failed after ${tried.length} address(es) (${tried.join(', ')}): ${err.code || err.message}`);
        sendJson(res, 502, { error: `upstream ${url.host}: ${err.message}` });
        return;
      }
      res.writeHead(answer.statusCode || 502, answer.headers);
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
  });
}

// One line per request, once answered; Docker's health probes (GET /health) are left out, or
// they would drown everything else.
function logRequest(req, res, path) {
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    if (path === '/health') return;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    log(`${req.method} ${path} ${res.statusCode} ${ms.toFixed(1)}ms`);
  });
}

const server = http.createServer((req, res) => {
  securityHeaders(req, res);
  const path = (req.url || '/').split('?')[0];
  logRequest(req, res, path);
  if (req.method === 'OPTIONS') {
    res.setHeader('Access-Control-Allow-Methods', 'GET,POST,PUT,PATCH,DELETE,OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Authorization,Content-Type');
    res.writeHead(204);
    res.end();
    return;
  }
  if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
    health().then(
      (result) => sendJson(res, result.healthy ? 200 : 503, {
        status: result.healthy ? 'ok' : 'unhealthy',
        service: SERVICE_NAME,
        checks: result.checks,
        ...(result.healthy ? {} : { reason: result.reason }),
      }),
      (err) => sendJson(res, 503, { status: 'unhealthy', service: SERVICE_NAME, reason: err.message }),
    );
    return;
  }
  const match = /^\/([^/]+)(\/.*)?$/.exec(path);
  if (match && upstreams.has(match[1])) {
    const query = (req.url || '').slice(path.length);
    proxy(req, res, upstreams.get(match[1]), `${match[2] || '/'}${query}`);
    return;
  }
  if (path === '/') {
    sendJson(res, 200, {
      service: SERVICE_NAME,
      environment: env.NODE_ENV || 'development',
      upstreams: [...upstreams.keys()],
    });
    return;
  }
  sendJson(res, 404, { error: 'not found', path });
});

server.listen(PORT, '0.0.0.0', () => {
  log(`listening on 0.0.0.0:${PORT} (NODE_ENV=${env.NODE_ENV || ''}, upstreams: ${[...upstreams.keys()].join(',') || 'none'})`);
});

// PID 1 in a container: without handlers SIGTERM would be ignored until Docker's SIGKILL.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    log(`${signal}: shutting down`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
