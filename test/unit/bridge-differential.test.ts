// The direct Node bridge against the replay (the oracle), from a client's and an app's side: every
// fixture of bridge-fixtures.ts goes through both, and what the gateway received (status, headers
// minus Date, body bytes, appStatus, errors) and what the app saw (request facts, socket facts,
// the order of events on req and res) must be identical. Each fixture also checks its outcome on
// its own, so a fixture both bridges get wrong still fails.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BRIDGES, FIXTURES, runFixture, type Outcome } from './bridge-fixtures.ts';

for (const fixture of FIXTURES) {
  test(`direct vs replay: ${fixture.name}`, { timeout: 15_000 }, async () => {
    const results: Record<string, Outcome[]> = {};
    for (const bridge of BRIDGES) results[bridge] = await runFixture(fixture, bridge);
    const [oracle, direct] = [results.replay ?? [], results.direct ?? []];
    for (const [i, o] of oracle.entries()) {
      // Outcome checks first on the oracle: a broken fixture shows as such, not as a difference.
      fixture.expect?.(o);
      const d = direct[i];
      assert.ok(d !== undefined, 'the direct bridge gave fewer outcomes');
      assert.deepEqual(d.client, o.client, `request ${i + 1}: what the gateway received differs (actual: direct, expected: replay)`);
      assert.deepEqual(d.app.facts, o.app.facts, `request ${i + 1}: what the app saw differs (actual: direct, expected: replay)`);
      assert.deepEqual(d.app.events, o.app.events, `request ${i + 1}: event order differs (actual: direct, expected: replay)`);
      fixture.expect?.(d);
    }
  });
}
