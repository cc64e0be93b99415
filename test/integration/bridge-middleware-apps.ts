// The real-middleware apps the bridge tests mount behind nginx, from an app author's side: Express
// with express.static, sendFile, download, compression, multer, cookie-parser and server-sent
// events; Koa with @koa/bodyparser; Fastify with @fastify/formbody, @fastify/cookie and an onSend
// hook; Hono streaming. Each is built as its users write it; nothing here knows about postern.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { pipeline, Readable } from 'node:stream';
import express from 'express';
import compression from 'compression';
import cookieParser from 'cookie-parser';
import multer from 'multer';
import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import Fastify from 'fastify';
import formbody from '@fastify/formbody';
import fastifyCookie from '@fastify/cookie';
import { Hono } from 'hono';
import { stream, streamSSE } from 'hono/streaming';
import type { NodeHandler } from '../../src/app/adapters/node.ts';

export const COOKIE_SECRET = 'bridge-test-secret';

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic bytes, so a wrong range or a lost chunk shows in the hash. */
export function pattern(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export interface StaticFiles {
  readonly dir: string;
  readonly hello: string;
  /** 1 MiB of pattern bytes, at `big.bin`. */
  readonly big: Buffer;
  remove(): void;
}

export function staticFiles(): StaticFiles {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bridge-static-'));
  const hello = 'hello from express.static\n';
  const big = pattern(1 << 20, 7);
  writeFileSync(join(dir, 'hello.txt'), hello);
  writeFileSync(join(dir, 'big.bin'), big);
  return { dir, hello, big, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Handshakes between a streaming handler and the test's client: the handler writes an event, then
 * waits for the client to say (by a second request) that it has read it. Bounded: a handler that
 * is never acknowledged writes a `timeout` event instead of hanging the suite.
 */
export class Acks {
  readonly #waiting = new Map<string, () => void>();
  readonly #given = new Set<string>();

  wait(id: string, timeoutMs = 5000): Promise<boolean> {
    if (this.#given.delete(id)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        resolve(false);
      }, timeoutMs);
      this.#waiting.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  give(id: string): void {
    const w = this.#waiting.get(id);
    if (w === undefined) this.#given.add(id);
    else {
      this.#waiting.delete(id);
      w();
    }
  }
}

export const SSE_EVENTS = 3;
/** What a compressed stream writes: 40 lines, in four pieces, each flushed. */
export const STREAM_PIECES = Array.from({ length: 4 }, (_, i) => Array.from({ length: 10 }, (_, j) => `piece ${i} line ${j}: ${'z'.repeat(60)}\n`).join(''));
export const BIG_TEXT = Array.from({ length: 2000 }, (_, i) => `line ${i} of a compressible text\n`).join('');

type Handler = NodeHandler;

/** A download streamed with backpressure: BIG_DOWNLOAD_BYTES in 64 KiB pieces of pattern bytes. */
export const BIG_DOWNLOAD_BYTES = 8 << 20;
export function* bigPieces(): Generator<Buffer> {
  for (let i = 0; i < BIG_DOWNLOAD_BYTES / 65536; i++) yield pattern(65536, 100 + i);
}

export function expressApp(files: StaticFiles, acks: Acks): Handler {
  const app = express();
  app.use('/static', express.static(files.dir));
  app.get('/file', (_req, res) => {
    res.sendFile(join(files.dir, 'big.bin'));
  });
  app.get('/download', (_req, res) => {
    res.download(join(files.dir, 'hello.txt'), 'greeting report.txt');
  });
  app.use('/gz', compression({ threshold: 0 }));
  app.get('/gz/text', (_req, res) => {
    res.type('text/plain').send(BIG_TEXT);
  });
  app.get('/gz/stream', (_req, res) => {
    res.type('text/plain');
    let i = 0;
    const next = (): void => {
      if (i === STREAM_PIECES.length) return void res.end();
      res.write(STREAM_PIECES[i++]);
      // compression's flush(): what an app does to push a partial compressed stream out.
      (res as ServerResponse & { flush?: () => void }).flush?.();
      setImmediate(next);
    };
    next();
  });
  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: 8 << 20 } });
  app.post('/upload', upload.array('files', 5), (req, res) => {
    const list = (req.files as Express.Multer.File[] | undefined) ?? [];
    res.json({
      fields: req.body as unknown,
      files: list.map((f) => ({ field: f.fieldname, name: f.originalname, type: f.mimetype, size: f.size, sha256: sha256(f.buffer) })),
    });
  });
  app.use('/cookie', cookieParser(COOKIE_SECRET));
  app.get('/cookie/set', (_req, res) => {
    res.cookie('session', 'abc 123', { signed: true, httpOnly: true });
    res.cookie('plain', 'p1');
    res.send('set');
  });
  app.get('/cookie/get', (req, res) => {
    res.json({ signed: req.signedCookies as unknown, plain: req.cookies as unknown });
  });
  app.get('/sse', (req, res) => {
    const id = typeof req.query.id === 'string' ? req.query.id : '';
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
    let n = 0;
    const send = (): void => {
      res.write(`id: ${n}\ndata: event ${n}\n\n`);
      n++;
      if (n === SSE_EVENTS) return void res.end();
      void acks.wait(`${id}:${n - 1}`).then((ok) => {
        if (ok) send();
        else res.end('event: timeout\ndata: never acknowledged\n\n');
      });
    };
    send();
  });
  app.get('/big', (_req, res) => {
    res.type('application/octet-stream');
    pipeline(Readable.from(bigPieces()), res, () => undefined);
  });
  app.post('/echo', (req, res) => {
    res.type('application/octet-stream');
    req.pipe(res);
  });
  app.get('/ack', (req, res) => {
    acks.give(typeof req.query.id === 'string' ? req.query.id : '');
    res.send('ack');
  });
  return app;
}

export function koaApp(): Handler {
  const app = new Koa();
  app.silent = true;
  app.use(bodyParser({ enableTypes: ['json', 'form'] }));
  app.use((ctx) => {
    ctx.body = { method: ctx.method, path: ctx.path, type: ctx.request.type, body: ctx.request.body };
  });
  return app.callback();
}

export async function fastifyApp(): Promise<Handler> {
  const app = Fastify();
  await app.register(formbody);
  await app.register(fastifyCookie, { secret: COOKIE_SECRET });
  app.addHook('onSend', (_request, reply, payload, done) => {
    void reply.header('x-on-send', 'seen');
    done(null, payload);
  });
  app.post('/form', (request) => Promise.resolve({ form: request.body }));
  app.get('/cookie', async (request, reply) => {
    void reply.setCookie('fast', 'f1', { path: '/', signed: true });
    const raw = request.cookies.fast;
    return { fast: raw === undefined ? null : request.unsignCookie(raw) };
  });
  await app.ready();
  return (req, res) => app.routing(req, res);
}

export function honoApp(acks: Acks): Hono {
  const app = new Hono();
  app.get('/stream', (c) => stream(c, async (s) => {
    for (const piece of STREAM_PIECES) await s.write(piece);
  }));
  app.get('/sse', (c) => {
    const id = c.req.query('id') ?? '';
    c.header('X-Accel-Buffering', 'no');
    return streamSSE(c, async (s) => {
      for (let n = 0; n < SSE_EVENTS; n++) {
        await s.writeSSE({ id: String(n), data: `event ${n}` });
        if (n === SSE_EVENTS - 1) break;
        if (!(await acks.wait(`${id}:${n}`))) {
          await s.writeSSE({ event: 'timeout', data: 'never acknowledged' });
          break;
        }
      }
    });
  });
  app.get('/ack', (c) => {
    acks.give(c.req.query('id') ?? '');
    return c.text('ack');
  });
  return app;
}
