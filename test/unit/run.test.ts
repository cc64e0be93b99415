// The native runner: bodies of every shape, Content-Length, HEAD/204/304, backpressure (the
// runner waits for drained()), errors → 500 / non-zero appStatus, abort → iteration stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { APP_STATUS, RUN_ERRORS, parseStatus, runNative, type RunOptions } from '../../src/app/run.ts';
import type { Environ, NativeApp } from '../../src/app/types.ts';
import { HEAD_ERRORS } from '../../protocols/common/head.ts';
import { MemoryResponder } from '../helpers/memory-responder.ts';

function environ(method = 'GET', signal: AbortSignal = new AbortController().signal): Environ {
  return {
    REQUEST_METHOD: method, SCRIPT_NAME: '', PATH_INFO: '/', QUERY_STRING: '', SERVER_NAME: 'localhost', SERVER_PORT: '80',
    SERVER_PROTOCOL: 'HTTP/1.1', 'postern.protocol': 'fastcgi', 'postern.url_scheme': 'http', 'postern.role': 'responder',
    'postern.input': Readable.from([]), 'postern.signal': signal,
  };
}

async function run(app: NativeApp, opts: { method?: string; responder?: MemoryResponder; signal?: AbortSignal } & RunOptions = {}): Promise<MemoryResponder> {
  const r = opts.responder ?? new MemoryResponder();
  await runNative(app, environ(opts.method, opts.signal), r, opts);
  assert.ok(r.ended, 'runNative ended the response');
  return r;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('parseStatus: "NNN Reason", a bare code takes the standard reason, anything else throws', () => {
  assert.deepEqual(parseStatus('200 OK'), [200, 'OK']);
  assert.deepEqual(parseStatus('404 Nope Nope'), [404, 'Nope Nope']);
  assert.deepEqual(parseStatus('404'), [404, 'Not Found']);
  assert.deepEqual(parseStatus('299 '), [299, '']);
  for (const bad of ['', '20', '2000 OK', '200OK', 'abc', '099 x', ' 200 OK']) {
    assert.throws(() => parseStatus(bad), (err: unknown) => (err as { code?: string }).code === RUN_ERRORS.BAD_STATUS, bad);
  }
});

test('a string body is sent as UTF-8 with a Content-Length', async () => {
  const r = await run((_e, start) => {
    start('200 OK', [['Content-Type', 'text/plain']]);
    return 'héllo';
  });
  assert.equal(r.status, 200);
  assert.equal(r.reason, 'OK');
  assert.deepEqual(r.headers, [['Content-Type', 'text/plain'], ['Content-Length', '6']]);
  assert.equal(r.text, 'héllo');
  assert.equal(r.appStatus, APP_STATUS.OK);
});

test('bytes, arrays and null get a Content-Length; an app-set one is kept, whatever its case', async () => {
  const cases: ReadonlyArray<{ body: unknown; headers: Array<[string, string]>; length: string; text: string }> = [
    { body: new Uint8Array([104, 105]), headers: [], length: '2', text: 'hi' },
    { body: ['a', new Uint8Array([98]), 'çc'], headers: [], length: '5', text: 'abçc' },
    { body: [], headers: [], length: '0', text: '' },
    { body: null, headers: [], length: '0', text: '' },
    { body: undefined, headers: [], length: '0', text: '' },
    { body: 'abc', headers: [['content-LENGTH', '3']], length: '3', text: 'abc' },
  ];
  for (const c of cases) {
    const r = await run((_e, start) => {
      start('200 OK', c.headers);
      return c.body as string;
    });
    assert.equal(r.header('content-length'), c.length, JSON.stringify(c.body));
    assert.equal(r.headers.filter(([n]) => n.toLowerCase() === 'content-length').length, 1);
    assert.equal(r.text, c.text);
  }
});

test('an async app (a promise of a body) works like a sync one', async () => {
  const r = await run(async (_e, start) => {
    await tick();
    start('201 Created', [['X-A', '1']]);
    return 'made';
  });
  assert.equal(r.status, 201);
  assert.equal(r.text, 'made');
  assert.equal(r.header('content-length'), '4');
});

test('sync and async iterables stream chunk by chunk, without a Content-Length', async () => {
  function* sync(): Generator<string | Uint8Array> {
    yield 'a';
    yield '';
    yield new Uint8Array([98]);
    yield 'é';
  }
  async function* asyncGen(): AsyncGenerator<string> {
    yield 'x';
    await tick();
    yield 'y';
  }
  for (const [body, text] of [[sync(), 'abé'], [asyncGen(), 'xy'], [Readable.from(['r1', 'r2']), 'r1r2']] as const) {
    const r = await run((_e, start) => {
      start('200 OK', []);
      return body as Iterable<string>;
    });
    assert.equal(r.text, text);
    assert.equal(r.header('content-length'), undefined);
    assert.ok(r.events.filter((e) => e.type === 'write').every((e) => e.type === 'write' && e.bytes.length > 0), 'empty chunks are not written');
    assert.equal(r.appStatus, 0);
  }
});

test('WSGI lazy start_response: a generator may call it before its first chunk', async () => {
  const r = await run((_e, start) => (function* () {
    start('202 Accepted', []);
    yield 'late';
  })());
  assert.equal(r.status, 202);
  assert.equal(r.text, 'late');
});

test('an empty stream still sends its head, with Content-Length: 0', async () => {
  const r = await run((_e, start) => {
    start('200 OK', []);
    return (function* () {})();
  });
  assert.equal(r.status, 200);
  assert.equal(r.header('content-length'), '0');
});

test('backpressure: after write() returns false the runner waits for drained() before the next chunk', async () => {
  const r = new MemoryResponder({ highWaterMark: 0 });
  let pulled = 0;
  const done = runNative((_e, start) => {
    start('200 OK', []);
    return (async function* () {
      for (let i = 0; i < 3; i++) {
        pulled++;
        await Promise.resolve();
        yield `chunk${i}`;
      }
    })();
  }, environ(), r);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(r.chunks.length, 1, 'one chunk written, then the runner waits');
  assert.equal(pulled, 1, 'the app is not asked for more while blocked');
  assert.equal(r.waiting, true);
  r.release();
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(r.chunks.length, 2);
  assert.equal(pulled, 2);
  r.release();
  for (let i = 0; i < 5; i++) await tick();
  r.release();
  await done;
  assert.equal(r.text, 'chunk0chunk1chunk2');
  assert.equal(r.drainedCalls, 3);
  assert.equal(r.writesWhileBlocked, 0);
  assert.equal(r.appStatus, 0);
});

test('HEAD: the head with the GET Content-Length, no body; a streaming body is closed unread', async () => {
  const str = await run((_e, start) => {
    start('200 OK', [['Content-Type', 'text/plain']]);
    return 'twelve bytes';
  }, { method: 'HEAD' });
  assert.equal(str.header('content-length'), '12');
  assert.equal(str.chunks.length, 0);
  const own = await run((_e, start) => {
    start('200 OK', [['Content-Length', '99']]);
    return null;
  }, { method: 'HEAD' });
  assert.equal(own.header('content-length'), '99');
  const none = await run((_e, start) => {
    start('200 OK', []);
    return null;
  }, { method: 'HEAD' });
  assert.equal(none.header('content-length'), undefined, 'a null HEAD body says nothing about the GET length');
  let returned = false;
  let pulled = 0;
  const stream = await run((_e, start) => {
    start('200 OK', []);
    return {
      [Symbol.iterator]: () => ({
        next: () => (++pulled > 10 ? { done: true, value: undefined } : { done: false, value: 'x' }),
        return: () => {
          returned = true;
          return { done: true, value: undefined };
        },
      }),
    } as Iterable<string>;
  }, { method: 'HEAD' });
  assert.equal(stream.chunks.length, 0);
  assert.equal(pulled, 1);
  assert.equal(returned, true);
  assert.equal(stream.appStatus, 0);
});

test('204 and 304 send no body and get no Content-Length; an app-set one on 304 is kept', async () => {
  for (const status of ['204 No Content', '304 Not Modified']) {
    const r = await run((_e, start) => {
      start(status, []);
      return 'ignored';
    });
    assert.equal(r.chunks.length, 0, status);
    assert.equal(r.header('content-length'), undefined, status);
  }
  const kept = await run((_e, start) => {
    start('304 Not Modified', [['Content-Length', '1234']]);
    return null;
  });
  assert.equal(kept.header('content-length'), '1234');
});

test('the legacy write() callable sends the head at once; a returned body follows', async () => {
  const r = await run((_e, start) => {
    const write = start('200 OK', []);
    write('a');
    write(new Uint8Array([98]));
    return ['c'];
  });
  assert.equal(r.text, 'abc');
  assert.equal(r.header('content-length'), undefined);
  assert.equal(r.events[0]?.type, 'head');
});

test('errors before the head: 500 with a generic text body, appStatus 1, onError told once', async () => {
  const boom = new Error('secret detail');
  const apps: ReadonlyArray<[string, NativeApp, string | undefined]> = [
    ['throws', () => { throw boom; }, undefined],
    ['rejects', () => Promise.reject(boom), undefined],
    ['throws after start_response', (_e, start) => { start('200 OK', []); throw boom; }, undefined],
    ['first chunk throws', (_e, start) => { start('200 OK', []); return (function* () { if (boom instanceof Error) throw boom; yield ''; })(); }, undefined],
    ['no start_response', () => 'body', RUN_ERRORS.NO_START_RESPONSE],
    ['bad status', (_e, start) => { start('OK', []); return 'x'; }, RUN_ERRORS.BAD_STATUS],
    ['start_response twice', (_e, start) => { start('200 OK', []); start('200 OK', []); return 'x'; }, RUN_ERRORS.START_RESPONSE_TWICE],
    ['CR/LF in a header value', (_e, start) => { start('200 OK', [['X-A', 'a\r\nSet-Cookie: x']]); return 'x'; }, HEAD_ERRORS.BAD_HEADER_VALUE],
    ['bad header name', (_e, start) => { start('200 OK', [['Bad Name', 'v']]); return 'x'; }, HEAD_ERRORS.BAD_HEADER_NAME],
    ['unsupported body', (_e, start) => { start('200 OK', []); return 42 as unknown as string; }, RUN_ERRORS.BAD_BODY],
  ];
  for (const [name, app, code] of apps) {
    const seen: unknown[] = [];
    const r = await run(app, { onError: (err) => seen.push(err) });
    assert.equal(r.status, 500, name);
    assert.equal(r.header('content-type'), 'text/plain; charset=utf-8', name);
    assert.equal(r.text, 'Internal Server Error\n', name);
    assert.equal(r.appStatus, APP_STATUS.ERROR, name);
    assert.equal(seen.length, 1, name);
    if (code === undefined) assert.equal(seen[0], boom, name);
    else assert.equal((seen[0] as { code?: string }).code, code, name);
  }
});

test('debug puts the stack in the 500 body; a throwing onError changes nothing', async () => {
  const r = await run(() => { throw new Error('visible detail'); }, { debug: true, onError: () => { throw new Error('hook'); } });
  assert.equal(r.status, 500);
  assert.match(r.text, /^Internal Server Error\n\nError: visible detail\n/);
  assert.equal(r.appStatus, 1);
});

test('errors after the head: no second head, end with appStatus 1', async () => {
  const r = await run((_e, start) => {
    start('200 OK', []);
    return (function* () {
      yield 'partial';
      throw new Error('mid-stream');
    })();
  }, { onError: () => undefined });
  assert.equal(r.events.filter((e) => e.type === 'head').length, 1);
  assert.equal(r.status, 200);
  assert.equal(r.text, 'partial');
  assert.equal(r.appStatus, APP_STATUS.ERROR);
});

test('start_response with exc_info: replaces the head before it is sent, re-raises after', async () => {
  const before = await run((_e, start) => {
    start('200 OK', [['X-A', '1']]);
    start('503 Service Unavailable', [['Retry-After', '1']], new Error('db down'));
    return 'later';
  });
  assert.equal(before.status, 503);
  assert.deepEqual(before.headers, [['Retry-After', '1'], ['Content-Length', '5']]);
  const raised: unknown[] = [];
  const after = await run((_e, start) => {
    const write = start('200 OK', []);
    write('sent');
    start('500 Oops', [], new Error('too late'));
    return 'never';
  }, { onError: (err) => raised.push(err) });
  assert.equal(after.status, 200);
  assert.equal(after.text, 'sent');
  assert.equal(after.appStatus, 1);
  assert.equal((raised[0] as Error).message, 'too late');
});

test('abort mid-stream: iteration stops, the generator is closed (finally runs), appStatus 2', async () => {
  const r = new MemoryResponder({ highWaterMark: 0 });
  let closed = false;
  let pulled = 0;
  const done = runNative((_e, start) => {
    start('200 OK', []);
    return (function* () {
      try {
        for (;;) {
          pulled++;
          yield 'tick';
        }
      } finally {
        closed = true;
      }
    })();
  }, environ(), r);
  await tick();
  assert.equal(r.waiting, true);
  r.abort();
  await done;
  assert.equal(closed, true);
  assert.equal(pulled, 1);
  assert.equal(r.appStatus, APP_STATUS.ABORTED);
});

test('abort while the app awaits: the signal ends the request at once and return() is called', async () => {
  const ac = new AbortController();
  let returned = false;
  const hanging: AsyncIterable<string> = {
    [Symbol.asyncIterator]: () => ({
      next: () => new Promise<IteratorResult<string>>(() => undefined),
      return: () => {
        returned = true;
        return Promise.resolve({ done: true, value: undefined });
      },
    }),
  };
  const r = new MemoryResponder();
  const done = runNative((_e, start) => {
    start('200 OK', []);
    return hanging;
  }, environ('GET', ac.signal), r);
  await tick();
  assert.equal(r.ended, false);
  ac.abort();
  await done;
  assert.equal(r.appStatus, APP_STATUS.ABORTED);
  assert.equal(returned, true);

  const ac2 = new AbortController();
  const r2 = new MemoryResponder();
  const done2 = runNative(() => new Promise<string>(() => undefined), environ('GET', ac2.signal), r2);
  await tick();
  ac2.abort();
  await done2;
  assert.equal(r2.appStatus, APP_STATUS.ABORTED);
  assert.equal(r2.headSent, false);
});

test('an already-aborted request sends nothing and ends aborted', async () => {
  const r = new MemoryResponder();
  r.abort();
  await runNative((_e, start) => {
    start('200 OK', []);
    return 'x';
  }, environ(), r);
  assert.equal(r.headSent, false);
  assert.equal(r.appStatus, APP_STATUS.ABORTED);
});
