// src/server/handoff.ts on this Node: the private `socket._handle.readStop()` it relies on leaves
// the peer's bytes in the kernel (not in this process), and a connection handed to another process
// then carries on there with nothing lost and no close seen by the peer. Fails on a Node where the
// internal changes (run on Node 20 and 24).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { handOff, stopReading, whenWritten } from '../../src/server/handoff.ts';

// The adopter: reads what the handed socket carries and answers `got:<bytes>` on it.
const ADOPTER = `
process.on('message', (m, socket) => {
  if (m !== 'adopt' || socket === undefined) return;
  socket.once('data', (d) => { socket.write('got:' + d.toString('latin1')); });
  process.send('adopted');
});
`;

function pair(): Promise<{ client: Socket; server: Socket; close: () => void }> {
  return new Promise((resolve) => {
    const srv = createServer((server) => {
      resolve({ client, server, close: () => srv.close() });
    });
    let client: Socket;
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      client = connect(typeof a === 'object' && a !== null ? a.port : 0, '127.0.0.1');
    });
  });
}

test('stopReading leaves later bytes in the kernel: no data event, bytesRead unchanged', async () => {
  const { client, server, close } = await pair();
  try {
    const seen: string[] = [];
    server.on('data', (d: Buffer) => seen.push(d.toString('latin1')));
    client.write('one');
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen, ['one']);
    assert.equal(stopReading(server), true);
    const before = server.bytesRead;
    client.write('two');
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(seen, ['one'], 'nothing read after readStop');
    assert.equal(server.bytesRead, before);
    assert.equal(server.readableLength, 0, 'nothing buffered in the stream either');
    // Still a live connection: what we write reaches the peer.
    await whenWritten(server);
  } finally {
    client.destroy();
    server.destroy();
    close();
  }
});

test('stopReading refuses a destroyed socket', async () => {
  const { client, server, close } = await pair();
  server.destroy();
  assert.equal(stopReading(server), false);
  client.destroy();
  close();
});

test('handOff: the bytes sent after readStop reach the adopting process, which answers on the same connection', async () => {
  const child = spawn(process.execPath, ['-e', ADOPTER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { client, server, close } = await pair();
  try {
    const answer = new Promise<string>((resolve) => client.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
    let clientClosed = false;
    client.on('close', () => { clientClosed = true; });
    assert.equal(stopReading(server), true);
    client.write('request-after-stop');
    await new Promise((r) => setTimeout(r, 100));
    const adopted = new Promise<void>((resolve) => child.once('message', () => resolve()));
    const sent = await handOff((_protocol, socket) => new Promise<boolean>((resolve) => {
      child.send('adopt', socket, { keepOpen: true }, (err) => resolve(err === null || err === undefined));
    }), 'fastcgi', server, Buffer.alloc(0));
    assert.equal(sent, true);
    assert.equal(server.destroyed, true, 'our copy is closed once sent');
    await adopted;
    assert.equal(await answer, 'got:request-after-stop');
    assert.equal(clientClosed, false, 'the peer never saw the connection close');
  } finally {
    client.destroy();
    close();
    child.kill();
  }
});
