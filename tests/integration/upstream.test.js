'use strict';
// The gateway's forwarding (images/reference-service/upstream.js), run with `node --test` inside
// the reference-service image by test_images.py, on loopback only: a server on 127.0.0.1, and
// 127.0.0.2 (nothing listens there) for an address that refuses.

const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const { test } = require('node:test');

const { forward } = require(process.env.UPSTREAM_JS || '/app/upstream.js');

function listen() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`${req.method} ${req.url}`);
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// A stand-in for dns.lookup that gives each call its own answer, and counts the calls.
function answers(...lists) {
  const lookup = (host, options, callback) => {
    lookup.calls += 1;
    const list = lists[Math.min(lookup.calls, lists.length) - 1];
    process.nextTick(() => callback(null, list.map((address) => ({ address, family: 4 }))));
  };
  lookup.calls = 0;
  return lookup;
}

function send(port, method, lookup, extra = {}) {
  const url = new URL(`http://upstream.test:${port}/order/1`);
  return new Promise((resolve) => {
    forward({ url, method, headers: {}, body: Buffer.alloc(0) }, (err, answer, tried) => {
      if (err) {
        resolve({ err, tried });
        return;
      }
      let text = '';
      answer.on('data', (chunk) => { text += chunk; });
      answer.on('end', () => resolve({ status: answer.statusCode, text, tried }));
    }, { lookup, ...extra });
  });
}

function busy(ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) { /* the event loop is kept from running, as on a starved host */ }
}

test('a connection made in time counts even when the event loop sees the timer first', async () => {
  const server = await listen();
  const { port } = server.address();
  const answer = answers(['127.0.0.1']);
  const lookup = (host, options, callback) => answer(host, options, (err, list) => {
    callback(err, list);
    // The request has queued its connection and its connect timer: right after them, before
    // the loop polls, it is kept busy past the timeout, so when it runs again both the made
    // connection and the expired timer are waiting.
    process.nextTick(() => busy(400));
  });
  const result = await send(port, 'GET', lookup, { connectTimeoutMs: 100 });
  server.close();
  assert.equal(result.err, undefined, String(result.err));
  assert.equal(result.status, 200);
  assert.deepEqual(result.tried, ['127.0.0.1']);
});

test('when the only address refuses, the name is looked up again and the new address answers', async () => {
  const server = await listen();
  const { port } = server.address();
  const lookup = answers(['127.0.0.2'], ['127.0.0.2', '127.0.0.1']);
  const result = await send(port, 'POST', lookup);
  server.close();
  assert.equal(result.status, 200, String(result.err));
  assert.equal(result.text, 'POST /order/1');
  assert.deepEqual(result.tried, ['127.0.0.2', '127.0.0.1']);
  assert.equal(lookup.calls, 2);
});

test('an answer with two addresses: the refusing one is passed over without a new lookup', async () => {
  const server = await listen();
  const { port } = server.address();
  const lookup = answers(['127.0.0.2', '127.0.0.1']);
  const result = await send(port, 'GET', lookup);
  server.close();
  assert.equal(result.status, 200, String(result.err));
  assert.equal(lookup.calls, 1);
});

test('when no address answers after the second lookup, the last error is given, and no third lookup', async () => {
  const server = await listen();
  const { port } = server.address();
  server.close();
  const lookup = answers(['127.0.0.1'], ['127.0.0.2']);
  const result = await send(port, 'GET', lookup);
  assert.equal(result.err.code, 'ECONNREFUSED');
  assert.deepEqual(result.tried, ['127.0.0.1', '127.0.0.2']);
  assert.equal(lookup.calls, 2);
});

// A server on 127.0.0.1 (answering after `delayMs`) and, on the same port of 127.0.0.3, one that
// takes connections and never answers: an address on a machine that has just gone.
async function liveAndSilent(delayMs = 0) {
  const live = http.createServer((req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`${req.method} ${req.url}`);
    }, delayMs);
  });
  await new Promise((resolve) => live.listen(0, '127.0.0.1', resolve));
  const { port } = live.address();
  const held = [];
  const silent = net.createServer((socket) => { held.push(socket); });
  await new Promise((resolve) => silent.listen(port, '127.0.0.3', resolve));
  const close = () => {
    held.forEach((socket) => socket.destroy());
    silent.close();
    live.close();
  };
  return { port, held, close };
}

test('a GET whose answer does not start in time is sent to the next address', async () => {
  const { port, held, close } = await liveAndSilent();
  const lookup = answers(['127.0.0.3', '127.0.0.1']);
  const result = await send(port, 'GET', lookup, { tryAnswerTimeoutMs: 200 });
  const heldThere = held.length;
  close();
  assert.equal(result.status, 200, String(result.err));
  assert.equal(result.text, 'GET /order/1');
  assert.deepEqual(result.tried, ['127.0.0.3', '127.0.0.1']);
  assert.equal(heldThere, 1);
});

test('a POST whose answer does not start is never sent again: it may have been acted on', async () => {
  const { port, close } = await liveAndSilent();
  const lookup = answers(['127.0.0.3', '127.0.0.1']);
  const result = await send(port, 'POST', lookup, { tryAnswerTimeoutMs: 100, answerTimeoutMs: 400 });
  close();
  assert.equal(result.err.message, 'timeout');
  assert.deepEqual(result.tried, ['127.0.0.3']);
});

test('the last address of an answer is given the whole answer timeout', async () => {
  const { port, close } = await liveAndSilent(300);
  const lookup = answers(['127.0.0.2', '127.0.0.1']);
  const result = await send(port, 'GET', lookup, { tryAnswerTimeoutMs: 100 });
  close();
  assert.equal(result.status, 200, String(result.err));
  assert.deepEqual(result.tried, ['127.0.0.2', '127.0.0.1']);
});
