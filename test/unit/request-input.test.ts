// RequestInput from the app's side: a failure nobody listens for is kept, not thrown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestInput } from '../../src/server/request-input.ts';

function failure(): Error {
  return Object.assign(new Error('the FastCGI connection closed before the request finished'), { code: 'POSTERN_ERR_CONNECTION_CLOSED' });
}

/** Runs `body` with uncaught exceptions collected (not thrown), and returns them. */
async function uncaughtDuring(body: () => Promise<void>): Promise<unknown[]> {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => { uncaught.push(err); };
  process.on('uncaughtException', onUncaught);
  try {
    await body();
    await new Promise((resolve) => setTimeout(resolve, 20));
    return uncaught;
  } finally {
    process.off('uncaughtException', onUncaught);
  }
}

test('a body that fails with no error listener does not crash the process; a later read gets the error', async () => {
  let input: RequestInput | undefined;
  const uncaught = await uncaughtDuring(async () => {
    input = new RequestInput({ unblock: () => undefined });
    input.feed(Buffer.from('part of a body'), 1 << 20);
    input.fail(failure());
    await Promise.resolve();
  });
  assert.deepEqual(uncaught, []);
  assert.ok(input !== undefined);
  const failed = input;
  assert.equal(failed.destroyed, true);
  await assert.rejects(async () => {
    for await (const chunk of failed) assert.ok(Buffer.isBuffer(chunk));
  }, { code: 'POSTERN_ERR_CONNECTION_CLOSED' });
});

test('a listener removed between the failure and its error event (as the Node bridge does on abort) does not crash either', async () => {
  const uncaught = await uncaughtDuring(async () => {
    const input = new RequestInput({ unblock: () => undefined });
    const listener = (): void => undefined;
    input.on('error', listener);
    input.fail(failure());
    input.off('error', listener);
    await Promise.resolve();
  });
  assert.deepEqual(uncaught, []);
});

test('with a listener the failure is emitted, with its code', async () => {
  const input = new RequestInput({ unblock: () => undefined });
  const seen = new Promise<unknown>((resolve) => input.once('error', resolve));
  input.fail(failure());
  assert.equal(((await seen) as { code?: string }).code, 'POSTERN_ERR_CONNECTION_CLOSED');
});

test('a blocked input that is destroyed gives the socket back to its owner', () => {
  const unblocked: RequestInput[] = [];
  const input = new RequestInput({ unblock: (i) => unblocked.push(i) });
  input.blocked = true;
  input.destroy();
  assert.deepEqual(unblocked, [input]);
});
