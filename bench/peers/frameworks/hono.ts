// The frameworks bench's Hono 4 hello, from the app's side: `Hello World` as text/plain for GET /.
// `app` mounts through postern's Fetch bridge with the lazy Request (the default); `eager` is the
// same app with a full Request built for every request (`fetchRequest: 'eager'`), the old path.
import { Hono } from 'hono';
import { fromFetchHandler } from '../../../src/app/adapters/fetch.ts';
import { native } from '../../../src/app/adapters/marker.ts';

export const app = new Hono();
app.get('/', (c) => c.text('Hello World'));

export const eager = native(fromFetchHandler(app.fetch, { fetchRequest: 'eager' }));
