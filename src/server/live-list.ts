// The connections a server holds, from the server's side: add, delete, size and a snapshot to
// iterate, in an array where each member knows its slot (a delete moves the last member into the
// hole and pops). It replaced a Set<Tracked> that took one add and one delete per connection.
//
// Why not a Set (issue 17, BENCHMARKS.md "A new connection per request: the live set"): with the
// Set, a share of everything postern allocated per connection stayed reachable until the next
// scavenge and was promoted, more so the more connections overlapped, and without it that stopped.
// The likely path: V8's ordered hash tables (Set, Map) move to a new table when they grow, shrink
// or shed deleted entries, and the table left behind keeps its entries and a link to its successor
// for iterators still walking it (v8/src/objects/ordered-hash-table.h); once one table of that
// chain is in the old generation, later tables and the connections in them, closed or not, are
// reachable at the next scavenge. (An HTTP keep-alive connection's own Set of requests, one entry
// at a time, showed no promotion at all: 0 bytes a scavenge under wrk -c16, so it stays a Set.)
// Measured, a new connection per request with 16 at once (`node --no-allocation-site-pretenuring
// --trace-gc-nvp bench/connection-life.js --protocol fastcgi --target postern --conns 16`, tsc
// build), promoted per scavenge: Node 20 1.87 → 0.92 MB, Node 24 0.97 → 0.13 MB; the GC's pauses
// over 33,000 connections 286–304 → 175–183 ms (Node 20), 185–188 → 98–100 ms (Node 24). Behind
// nginx without keep_conn, the old and the new build loaded at the same moment (`npm run bench --
// --paired`), CPU per connection old ÷ new: 1.06 to 1.08 on Node 20, 1.07 to 1.18 on Node 24.

/** A member of one LiveList at a time: its slot there, -1 when it is in none. */
export interface LiveMember {
  liveSlot: number;
}

export class LiveList<T extends LiveMember> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** Adds `item` (no-op when it is already in a list). */
  add(item: T): void {
    if (item.liveSlot !== -1) return;
    item.liveSlot = this.#items.length;
    this.#items.push(item);
  }

  /** Removes `item`; false when it was not in this list. */
  delete(item: T): boolean {
    const slot = item.liveSlot;
    if (slot < 0 || this.#items[slot] !== item) return false;
    // pop() empties the last slot, so the array holds no reference to a member that left.
    const last = this.#items.pop()!;
    if (last !== item) {
      this.#items[slot] = last;
      last.liveSlot = slot;
    }
    item.liveSlot = -1;
    return true;
  }

  /** The members now, in a new array: what the caller does to one (close it) may remove it. */
  snapshot(): T[] {
    return this.#items.slice();
  }
}
