// A tree whose contents can be replaced while the server runs, from the reloading side: SIGHUP
// builds a new Tree and swaps it in; requests already dispatched finish on the tree they started on.

import { Tree } from '../app/tree.ts';
import type { Mount, MountMatch, MountOptions } from '../app/tree.ts';
import type { Environ, Responder, RoleName } from '../app/types.ts';
import type { AppCloseProblem, NamedCloser } from '../app/shutdown.ts';

export class SwappableTree extends Tree {
  #current: Tree;

  constructor(initial: Tree) {
    super();
    this.#current = initial;
  }

  get current(): Tree {
    return this.#current;
  }

  /** Points every later request at `next`. */
  swap(next: Tree): void {
    this.#current = next;
  }

  override mount(app: unknown, prefix?: string, options?: MountOptions): this {
    this.#current.mount(app, prefix, options);
    return this;
  }

  override get mounts(): readonly Mount[] {
    return this.#current.mounts;
  }

  override hasRole(role: RoleName): boolean {
    return this.#current.hasRole(role);
  }

  override match(path: string, role?: RoleName): MountMatch | undefined {
    return this.#current.match(path, role);
  }

  override closers(): NamedCloser[] {
    return this.#current.closers();
  }

  /** Closes the current tree's apps (a tree swapped out is closed by whoever retired it). */
  override closeApps(options: { readonly timeoutMs: number; readonly onProblem: (problem: AppCloseProblem) => void }): Promise<void> {
    return this.#current.closeApps(options);
  }

  override handle(environ: Environ, responder: Responder): Promise<void> {
    return this.#current.handle(environ, responder);
  }
}
