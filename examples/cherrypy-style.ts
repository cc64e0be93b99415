// The CherryPy application from the project brief as a module to mount, from the user's side:
//   postern --mount /=examples/cherrypy-style.ts#one --mount /par=examples/cherrypy-style.ts#two
// A handler gets (args, kwargs, ctx): the leftover path segments, the query and form fields, and
// ctx.response for status and headers (CherryPy keeps those in a thread-local; Node cannot).

import { expose, objectApp, type DispatchContext, type Kwargs } from '../src/app/dispatch.ts';

class One {
  // Like `def index(self)`: no path arguments and no fields, so `/?x=1` is a 404.
  index = expose((_args: string[], _kwargs: Kwargs, { response }: DispatchContext): string => {
    response.headers.set('Content-Type', 'text/plain');
    return 'Hello World';
  }, { maxArgs: 0, kwargs: [] });
}

class Two {
  // Like `def default(self, *args, **kwargs)`: every leftover segment, every field.
  default = expose((args: string[], kwargs: Kwargs, { response }: DispatchContext): string => {
    response.headers.set('Content-Type', 'text/plain');
    let content = 'Positional arguments\n\n';
    for (const k of args) content += k + '\n';
    content += '\nKeyword arguments\n\n';
    for (const [k, v] of kwargs) {
      // A repeated field is an array and an upload a FilePart; CherryPy fails on both (500).
      if (typeof v !== 'string') throw new TypeError(`field ${k} is not a single text value`);
      content += k + ': ' + v + '\n';
    }
    return content;
  });
}

export const one = objectApp(new One());
export const two = objectApp(new Two());
