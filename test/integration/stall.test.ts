// A 408 means the client was slow, never that postern was (issue 15), from a client's side: the
// server runs in this process, so blocking this event loop blocks it. A client whose bytes were
// sent before the block gets its answer after it, however long the block; a client that truly sends
// nothing gets 408 after headerTimeoutMs / bodyIdleTimeoutMs. On every protocol, header and body.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Protocol } from '../../src/app/types.ts';
import type { NativeApp } from '../../src/app/types.ts';
import { startTestServer, treeOf } from '../helpers/servers.ts';
import { dialRaw, rawRequest, reply, sleep } from './hardening-helpers.ts';

const TIMEOUT_MS = 300;
/** Far past the timeouts: the server cannot look at its sockets for this long. */
const BLOCK_MS = 1500;

const reader: NativeApp = async (environ, start) => {
  let n = 0;
  for await (const chunk of environ['postern.input']) n += (chunk as Buffer).length;
  start('200 OK', [['Content-Type', 'text/plain']]);
  return `read ${String(n)}`;
};

function blockLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) { /* this process, server included, is stuck */ }
}

/** Sends `bytes` split at `at`; between the halves waits, then (if `block`) blocks the loop right after the second half left. */
async function split(protocol: Protocol, port: number, bytes: Buffer, at: number, block: boolean, silent: boolean): Promise<Buffer> {
  const s = await dialRaw({ port });
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  let isClosed = false;
  const closed = new Promise<void>((resolve) => s.once('close', () => { isClosed = true; resolve(); }));
  s.on('error', () => undefined);
  s.write(bytes.subarray(0, at));
  await sleep(100);
  if (!silent) {
    s.write(bytes.subarray(at));
    // The second half is in the server's kernel buffer now; the server has not read it.
    if (block) blockLoop(BLOCK_MS);
    if (protocol !== 'http' && protocol !== 'fastcgi') s.end();
  }
  const timer = setTimeout(() => s.destroy(), 10_000);
  if (protocol === 'http' || protocol === 'fastcgi') {
    // Keep-alive protocols: wait for a whole answer, then close.
    for (let i = 0; i < 200 && !isClosed && !answered(protocol, Buffer.concat(chunks)); i++) await sleep(25);
    s.end();
  }
  await closed;
  clearTimeout(timer);
  return Buffer.concat(chunks);
}

function answered(protocol: Protocol, bytes: Buffer): boolean {
  try {
    return reply(protocol, bytes).response !== undefined;
  } catch {
    return false;
  }
}

const PROTOCOLS: readonly Protocol[] = ['fastcgi', 'scgi', 'uwsgi', 'http'];

describe('a blocked event loop does not make postern blame the client', () => {
  for (const protocol of PROTOCOLS) {
    test(`${protocol}: head and body sent before a ${String(BLOCK_MS)} ms block are answered 200; a silent client gets 408`, async () => {
      const srv = await startTestServer({ tree: treeOf(reader), protocols: [protocol], headerTimeoutMs: TIMEOUT_MS, bodyIdleTimeoutMs: TIMEOUT_MS });
      try {
        const port = (srv.target(protocol) as { port: number }).port;
        const body = Buffer.alloc(64, 0x61);
        const whole = rawRequest(protocol, { method: 'POST', uri: '/up', body, keepConn: true });
        const headEnd = whole.length - body.length - (protocol === 'fastcgi' ? 16 : 0);

        // The head split, its second half sent just before the block: postern's stall, not the client's.
        const headBlocked = await split(protocol, port, whole, headEnd >> 1, true, false);
        assert.equal(reply(protocol, headBlocked).response?.status, 200, 'head completed before the block');

        // The body split the same way (the head arrived whole at once).
        const bodyBlocked = await split(protocol, port, whole, headEnd + 10, true, false);
        assert.equal(reply(protocol, bodyBlocked).response?.status, 200, 'body completed before the block');
        assert.match(reply(protocol, bodyBlocked).response?.body.toString('latin1') ?? '', /^read 64$/);

        // A body that truly stops: 408 (the head was whole, the app waits for the rest).
        const bodySilent = await split(protocol, port, whole, headEnd + 10, false, true);
        assert.equal(reply(protocol, bodySilent).response?.status, 408, 'a client silent mid-body');

        // A head that truly stops: 408 on HTTP; the gateways close (a front server's head never stalls).
        const headSilent = await split(protocol, port, whole, headEnd >> 1, false, true);
        if (protocol === 'http') assert.equal(reply(protocol, headSilent).response?.status, 408, 'a client silent mid-head');
        else assert.equal(headSilent.length, 0, 'the gateway closed a connection whose head stopped');
      } finally {
        await srv.close();
      }
    });
  }
});
