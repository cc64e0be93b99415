// The master's accept switch for the on-demand pool (src/supervisor/accept-gate.ts), from the
// master's side, on real sockets: it accepts on a duplicate of the bound socket, stops without
// closing the socket (a connection then waits in the kernel's queue, neither refused nor accepted),
// and starts again. This is where the Node internals it uses (a raw handle's listen/onconnection,
// net._createServerHandle in the helper, 'net.Native' handle transfer) would break.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindListener } from '../../src/supervisor/listeners.ts';
import { AcceptGate, duplicateSocket, type RawClient } from '../../src/supervisor/accept-gate.ts';

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const kind of ['tcp', 'unix'] as const) {
  test(`accepts while set, stops without closing the socket, and starts again (${kind})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-gate-'));
    const path = join(dir, 'g.sock');
    const listener = await bindListener(kind === 'tcp' ? { kind: 'tcp', host: '127.0.0.1', port: 0 } : { kind: 'unix', path }, undefined);
    const port = Number(listener.bound.split(':').pop());
    const dial = (): Socket => (kind === 'tcp' ? connect(port, '127.0.0.1') : connect(path));
    const accepted: RawClient[] = [];
    const errors: string[] = [];
    const gate = new AcceptGate(listener.fd, { connection: (c) => accepted.push(c), error: (m) => errors.push(m) });
    const clients: Socket[] = [];
    try {
      await gate.prepare();
      gate.set(true);
      assert.equal(gate.accepting, true);
      const a = dial();
      clients.push(a);
      await until(() => accepted.length === 1, 'the first accept');

      // Stopping closes the duplicate it polls, which needs the next spare at hand (fetched since set(true) used one).
      gate.set(false);
      await gate.prepare();
      assert.equal(gate.accepting, false, 'stopped once a spare was at hand');
      // The socket is still bound and listening: a connection is queued by the kernel, not refused.
      const b = dial();
      clients.push(b);
      let refused = false;
      b.on('error', () => { refused = true; });
      await new Promise<void>((resolve) => b.once('connect', resolve));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(accepted.length, 1, 'nobody accepts while the gate is shut');
      assert.equal(refused, false);

      // Open again (on the spare fetched meanwhile): the queued connection is accepted now.
      await gate.prepare();
      gate.set(true);
      await until(() => accepted.length === 2, 'the queued connection');
      assert.deepEqual(errors, []);
    } finally {
      for (const c of clients) c.destroy();
      for (const c of accepted) c.close();
      gate.close();
      listener.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('duplicateSocket hands back a new fd for the same socket', async () => {
  const listener = await bindListener({ kind: 'tcp', host: '127.0.0.1', port: 0 }, undefined);
  try {
    const dup = await duplicateSocket(listener.fd);
    assert.notEqual(dup.fd, listener.fd);
    assert.ok(dup.fd > 2);
    dup.close();
  } finally {
    listener.close();
  }
});
