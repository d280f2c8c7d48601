'use strict';
// Forwarding one request to an upstream that may be in the middle of being replaced (the
// gateway's proxy, server.js). While a new container of a service starts beside the old one,
// Docker's DNS answers with both addresses until the old one is gone, and the old one refuses
// connections once it stops. So every address the name resolves to is tried in turn: a refused
// connection (or, for a request without side effects, a reset one) moves on to the next. When
// every address of an answer has failed that way, the name is looked up once more and the
// addresses not tried yet are tried: the answer may have been read just before the new container
// took its alias, or just after the only address in it went away. The body was read whole before,
// so it can be sent again.
//
// An address on a machine that has just gone answers nothing at all, not even a reset, and a
// request already sent there would wait out the whole answer timeout. So a request without side
// effects, while the answer still holds an address not tried, waits TRY_ANSWER_TIMEOUT_MS for
// the answer to start before trying the next one; the last address gets ANSWER_TIMEOUT_MS, so
// that a slow answer from the only replica still arrives.

const dns = require('dns');
const http = require('http');

const RETRYABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET',
  'ECONNECTTIMEOUT', 'EANSWERTIMEOUT']);
// Errors after the request was sent: the upstream may have acted on it.
const AFTER_SENDING = new Set(['ECONNRESET', 'EANSWERTIMEOUT']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
// An address that has just gone (a container removed) answers nothing at all: give a connection
// this long before trying the next address. Longer than TCP's first SYN retransmission (1 s on
// Linux), so that a live upstream whose first SYN was dropped (a full accept queue under load)
// still gets its answer counted.
const CONNECT_TIMEOUT_MS = 2000;
const LOOKUPS = 2;
const ANSWER_TIMEOUT_MS = 10000;
// Below the edge's own wait for a GET's answer (edge.upstreamAnswerSeconds, 4 s by default), so
// that the gateway moves on before the edge gives up on it.
const TRY_ANSWER_TIMEOUT_MS = 3000;

// forward({ url, method, headers, body }, done, options): done(err, answer, attempts) once, with
// the upstream's response (a readable http.IncomingMessage) or the last error. `attempts` lists
// each address tried, for the log. `options.lookup` replaces dns.lookup, and the `...Ms` options
// the timeouts (tests).
function forward(request, done, options = {}) {
  const lookup = options.lookup || dns.lookup;
  const connectTimeoutMs = options.connectTimeoutMs || CONNECT_TIMEOUT_MS;
  const answerTimeoutMs = options.answerTimeoutMs || ANSWER_TIMEOUT_MS;
  const tryAnswerTimeoutMs = options.tryAnswerTimeoutMs || TRY_ANSWER_TIMEOUT_MS;
  const safe = SAFE_METHODS.has(request.method);
  const { url } = request;
  const tried = [];
  let lookups = 0;
  let lastError = null;

  const resolve = () => {
    lookups += 1;
    lookup(url.hostname, { all: true }, (err, addresses) => {
      if (err) {
        done(lastError || err, null, tried);
        return;
      }
      const fresh = addresses.map((a) => a.address).filter((a) => !tried.includes(a));
      attempt(fresh, 0);
    });
  };

  const attempt = (addresses, index) => {
    if (index >= addresses.length) {
      if (lookups < LOOKUPS) {
        resolve();
      } else {
        done(lastError || new Error(`no address of ${url.hostname} answered`), null, tried);
      }
      return;
    }
    const address = addresses[index];
    tried.push(address);
    let answered = false;
    const upstream = http.request({
      host: address,
      port: url.port || 80,
      path: url.pathname + url.search,
      method: request.method,
      headers: { ...request.headers, host: url.host },
      agent: false, // no kept-alive sockets to a container that is going away
      timeout: answerTimeoutMs,
    }, (answer) => {
      answered = true;
      done(null, answer, tried);
    });
    upstream.on('timeout', () => upstream.destroy(new Error('timeout')));
    upstream.on('socket', (socket) => {
      watchConnect(upstream, socket, address, connectTimeoutMs);
      if (safe && index + 1 < addresses.length) {
        watchAnswer(upstream, socket, address, tryAnswerTimeoutMs);
      }
    });
    upstream.on('error', (err) => {
      if (answered) return; // the answer's own stream reports it to whoever reads it
      lastError = err;
      const again = RETRYABLE.has(err.code) && (!AFTER_SENDING.has(err.code) || safe);
      if (again) {
        attempt(addresses, index + 1);
      } else {
        done(err, null, tried);
      }
    });
    upstream.end(request.body);
  };

  resolve();
}

// Ends a connection not made within the timeout. Timers run before the event loop polls for
// I/O, so a loop kept busy past the deadline (a loaded machine, a burst of requests) would see
// the timer first even when the connection was made in time: the decision is taken after the
// next poll, which reports a connection that is already there.
function watchConnect(upstream, socket, address, timeoutMs) {
  const timer = setTimeout(() => {
    setImmediate(() => {
      if (!socket.connecting) return;
      const err = new Error(`connect timeout ${address}`);
      err.code = 'ECONNECTTIMEOUT';
      upstream.destroy(err);
    });
  }, timeoutMs);
  socket.once('connect', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
}

// Ends a request whose answer has not started within the timeout of a connection made.
function watchAnswer(upstream, socket, address, timeoutMs) {
  let timer = null;
  socket.once('connect', () => {
    timer = setTimeout(() => {
      const err = new Error(`no answer within ${timeoutMs} ms from ${address}`);
      err.code = 'EANSWERTIMEOUT';
      upstream.destroy(err);
    }, timeoutMs);
  });
  upstream.once('response', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
}

module.exports = { forward, CONNECT_TIMEOUT_MS };
