// 1 GiB up and 1 GiB down through FastCGI and HTTP, from the front server's side: every byte
// arrives (sha256 on both ends) and memory stays flat (RSS growth bounded), because bodies are
// streamed with backpressure, never buffered.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { native } from '../../src/app/resolve.ts';
import { Tree } from '../../src/app/tree.ts';
import { fcgiStream, httpStream } from '../helpers/clients.ts';
import { blocks, blocksDigest, bulkApp, fcgiParams, MIB, startTestServer, withRssSampling, type TestServer } from '../helpers/servers.ts';

const GIB_MIB = 1024;
/** Generous for a process that is both client and server; unbounded buffering would need > 1 GiB. */
const RSS_LIMIT = 128 * MIB;

describe('1 GiB streamed through each protocol', () => {
  let srv: TestServer;
  let digest: string;

  before(async () => {
    srv = await startTestServer({ tree: new Tree({ onError: () => undefined }).mount(native(bulkApp), '/'), protocols: ['fastcgi', 'http'] });
    digest = blocksDigest(GIB_MIB);
  });
  after(() => srv.close());

  function* hashing(h: ReturnType<typeof createHash>): Generator<Buffer> {
    for (const b of blocks(GIB_MIB)) {
      h.update(b);
      yield b;
    }
  }

  for (const protocol of ['fastcgi', 'http'] as const) {
    test(`${protocol}: 1 GiB upload`, async () => {
      const sent = createHash('sha256');
      const chunks: Buffer[] = [];
      const { result, growth } = await withRssSampling(() =>
        protocol === 'fastcgi'
          ? fcgiStream(srv.target('fastcgi'), { params: fcgiParams('/sink', [['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', String(GIB_MIB * MIB)]]), body: hashing(sent) }, (c) => chunks.push(Buffer.from(c)))
          : httpStream(srv.target('http'), { method: 'POST', path: '/sink', headers: { 'Content-Length': String(GIB_MIB * MIB) }, body: hashing(sent) }, (c) => chunks.push(Buffer.from(c))),
      );
      assert.equal(result.head.status, 200);
      const out = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { bytes: number; sha256: string };
      assert.equal(out.bytes, GIB_MIB * MIB);
      assert.equal(out.sha256, sent.digest('hex'));
      assert.ok(growth < RSS_LIMIT, `RSS grew by ${String(Math.round(growth / MIB))} MiB`);
    });

    test(`${protocol}: 1 GiB download`, async () => {
      const got = createHash('sha256');
      const { result, growth } = await withRssSampling(() =>
        protocol === 'fastcgi'
          ? fcgiStream(srv.target('fastcgi'), { params: fcgiParams('/source', [['REQUEST_URI', `/source?mib=${String(GIB_MIB)}`]]) }, (c) => got.update(c))
          : httpStream(srv.target('http'), { path: `/source?mib=${String(GIB_MIB)}` }, (c) => got.update(c)),
      );
      assert.equal(result.head.status, 200);
      assert.equal(result.bodyBytes, GIB_MIB * MIB);
      if (result.appStatus !== undefined) assert.equal(result.appStatus, 0);
      assert.equal(got.digest('hex'), digest);
      assert.ok(growth < RSS_LIMIT, `RSS grew by ${String(Math.round(growth / MIB))} MiB`);
    });
  }
});
