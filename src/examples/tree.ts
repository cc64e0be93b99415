// The built-in example tree that `postern` serves when no mount is configured, from the user's
// side: the CherryPy application of /work/shared/peers/peers/seed_app.py, ported line for line.
// `expose(handler, …)` stands for `@cherrypy.expose`; `ctx.response` for `cherrypy.response`.

import { expose, objectApp, type DispatchContext, type Kwargs } from '../app/dispatch.ts';
import { Tree, type TreeOptions } from '../app/tree.ts';

export class One {
  // `def index(self)` takes no positional and no keyword arguments: `/index/x` and `/?x=1` are
  // 404s and a form field in a POST a 400, as CherryPy answers.
  index = expose((_args: string[], _kwargs: Kwargs, { response }: DispatchContext): string => {
    response.headers.set('Content-Type', 'text/plain');
    return 'Hello World';
  }, { maxArgs: 0, kwargs: [] });
}

export class Two {
  // `def default(self, *args, **kwargs)`.
  default = expose((args: string[], kwargs: Kwargs, { response }: DispatchContext): string => {
    response.headers.set('Content-Type', 'text/plain');
    let content = 'Positional arguments\n\n';
    for (const k of args) content += k + '\n';
    content += '\nKeyword arguments\n\n';
    for (const [k, v] of kwargs) {
      // Python's `k + ": " + kwargs[k]` raises TypeError for a repeated name (a list) or an
      // uploaded file (a Part): the reference answers 500 there, and so does the port.
      if (typeof v !== 'string') throw new TypeError(`can only concatenate str (not "${Array.isArray(v) ? 'list' : 'Part'}") to str`);
      content += k + ': ' + v + '\n';
    }
    return content;
  });
}

/** `One` at `/`, `Two` at `/par`: `cherrypy.tree.mount(One(), '/')`, `cherrypy.tree.mount(Two(), '/par')`. */
export function exampleTree(options: TreeOptions = {}): Tree {
  return new Tree(options).mount(objectApp(new One()), '/').mount(objectApp(new Two()), '/par');
}
