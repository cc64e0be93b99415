// The smallest native app, from the user's side: the WSGI contract in TypeScript.
//   postern --mount /=examples/hello.ts

import { native } from '../src/app/resolve.ts';

export default native((environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain; charset=utf-8']]);
  return `Hello World from ${String(environ['postern.protocol'])}\n`;
});
