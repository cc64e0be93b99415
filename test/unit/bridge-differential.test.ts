// The direct Node bridge against the replay (the oracle), from a client's and an app's side: every
// fixture of bridge-fixtures.ts goes through both, and what the gateway received (status, headers
// minus Date, body bytes, appStatus, errors) and what the app saw (request facts, socket facts,
// the order of events on req and res) must be identical. Each fixture also checks its outcome on
// its own, so a fixture both bridges get wrong still fails.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FIXTURES, runFixture, runOnNodeServer, SOCKET_METHODS, type Fixture, type Outcome } from './bridge-fixtures.ts';
import { eventsByEmitter } from '../helpers/bridges.ts';

async function both(fixture: Fixture): Promise<{ oracle: Outcome[]; direct: Outcome[] }> {
  const oracle = await runFixture(fixture, 'replay');
  const direct = await runFixture(fixture, 'direct');
  assert.equal(direct.length, oracle.length);
  // Outcome checks on the oracle first: a broken fixture shows as such, not as a difference.
  for (const o of oracle) fixture.expect?.(o);
  for (const d of direct) fixture.expect?.(d);
  return { oracle, direct };
}

for (const fixture of FIXTURES) {
  test(`direct vs replay: ${fixture.name}`, { timeout: 15_000 }, async () => {
    const { oracle, direct } = await both(fixture);
    for (const [i, o] of oracle.entries()) {
      const d = direct[i] as Outcome;
      assert.deepEqual(d.client, o.client, `request ${i + 1}: what the gateway received differs (actual: direct, expected: replay)`);
      assert.deepEqual(d.app.facts, o.app.facts, `request ${i + 1}: what the app saw differs (actual: direct, expected: replay)`);
      // Where the replay itself strays from node:http (see the fixture), a listening server is the reference.
      if (fixture.eventsReference === 'node') {
        const reference = await runOnNodeServer(fixture);
        if (fixture.eventsPerEmitter === true) assert.deepEqual(eventsByEmitter(d.app.events), eventsByEmitter(reference), `request ${i + 1}: events on req, on res or the app's own differ from node:http's (actual: direct)`);
        else assert.deepEqual(d.app.events, reference, `request ${i + 1}: event order differs from node:http's (actual: direct)`);
      } else {
        assert.deepEqual(d.app.events, o.app.events, `request ${i + 1}: event order differs (actual: direct, expected: replay)`);
      }
    }
  });
}

test('direct: the request socket has every method apps call (destroySoon too)', async () => {
  let missing: string[] = [];
  await runFixture({
    name: 'socket methods',
    request: { url: '/socket' },
    handler: () => (req, res) => {
      missing = SOCKET_METHODS.filter((m) => typeof (req.socket as unknown as Record<string, unknown>)[m] !== 'function');
      res.end();
    },
  }, 'direct');
  assert.deepEqual(missing, []);
});

// The oracle held to node:http itself: on a listening server over a keep-alive connection, these
// fixtures' handlers see the same events in the same order as through the replay.
const REFERENCE = [
  'response of 1 bytes with Content-Length',
  'response of 65537 bytes in 16 KiB writes, length unknown',
  "request body of 65536 bytes with CONTENT_LENGTH, read by 'data'",
  'the request body left unread, twice on one app',
  'req.pipe(res) echoes 200 KiB',
  "one write over the mark: false, then 'drain' before 'finish'",
];

for (const name of REFERENCE) {
  test(`replay vs a listening node:http server, event order: ${name}`, { timeout: 15_000 }, async () => {
    const fixture = FIXTURES.find((f) => f.name === name);
    assert.ok(fixture !== undefined, `no fixture ${name}`);
    const [oracle] = await runFixture(fixture, 'replay');
    assert.deepEqual(oracle?.app.events, await runOnNodeServer(fixture));
  });
}
