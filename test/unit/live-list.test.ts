// The server's list of live connections (src/server/live-list.ts): what a Set did for it (add,
// delete, size, iterate while members leave), checked against a Set over random operations, and
// that a member that left is not held by the list.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { LiveList, type LiveMember } from '../../src/server/live-list.ts';

class Member implements LiveMember {
  liveSlot = -1;
  readonly id: number;
  constructor(id: number) {
    this.id = id;
  }
}

test('add, delete and size', () => {
  const list = new LiveList<Member>();
  const [a, b, c] = [new Member(1), new Member(2), new Member(3)];
  list.add(a);
  list.add(b);
  list.add(c);
  assert.equal(list.size, 3);
  assert.equal(list.delete(a), true);
  assert.equal(list.size, 2);
  assert.equal(a.liveSlot, -1);
  // c moved into a's slot; b stayed.
  assert.deepEqual(list.snapshot().map((m) => m.id).sort(), [2, 3]);
  assert.equal(list.delete(a), false, 'a second delete finds nothing');
  assert.equal(list.delete(c), true);
  assert.equal(list.delete(b), true);
  assert.equal(list.size, 0);
  assert.deepEqual(list.snapshot(), []);
});

test('adding a member twice keeps one entry', () => {
  const list = new LiveList<Member>();
  const a = new Member(1);
  list.add(a);
  list.add(a);
  assert.equal(list.size, 1);
  assert.equal(list.delete(a), true);
  assert.equal(list.size, 0);
});

test('a member of another list is not removed from this one', () => {
  const one = new LiveList<Member>();
  const two = new LiveList<Member>();
  const a = new Member(1);
  const b = new Member(2);
  one.add(a);
  two.add(b);
  assert.equal(two.delete(a), false, 'a sits in slot 0 of one, b in slot 0 of two');
  assert.equal(two.size, 1);
  assert.equal(one.size, 1);
});

test('the snapshot can be walked while its members leave', () => {
  const list = new LiveList<Member>();
  const members = Array.from({ length: 10 }, (_, i) => new Member(i));
  for (const m of members) list.add(m);
  const seen: number[] = [];
  for (const m of list.snapshot()) {
    seen.push(m.id);
    list.delete(m);
    // A member leaving takes another with it (a drain that closes a neighbour).
    const other = members[(m.id + 5) % 10]!;
    list.delete(other);
  }
  assert.deepEqual(seen.sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every member was visited once');
  assert.equal(list.size, 0);
});

test('random adds and deletes agree with a Set, and every slot points back at its member', () => {
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pool = Array.from({ length: 50 }, (_, i) => new Member(i));
  const list = new LiveList<Member>();
  const model = new Set<Member>();
  for (let step = 0; step < 20_000; step++) {
    const m = pool[random(pool.length)]!;
    if (random(2) === 0) {
      list.add(m);
      model.add(m);
    } else {
      assert.equal(list.delete(m), model.delete(m), `step ${step}: delete of ${m.id}`);
    }
    assert.equal(list.size, model.size);
  }
  const now = list.snapshot();
  assert.deepEqual(new Set(now), model);
  now.forEach((m, i) => assert.equal(m.liveSlot, i));
  for (const m of pool) if (!model.has(m)) assert.equal(m.liveSlot, -1);
});

test('a member that left is not held by the list', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const list = new LiveList<Member>();
  const keep = new Member(0);
  list.add(keep);
  let ref: WeakRef<Member> | undefined;
  (() => {
    const gone = new Member(1);
    list.add(gone);
    ref = new WeakRef(gone);
    list.delete(gone);
  })();
  // A WeakRef's target is kept until the end of the job that made it.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.equal(ref?.deref(), undefined, 'the list still held the member');
  assert.equal(list.size, 1);
});
