/**
 * Where the app keeps its data and syncs to, from the page's query string:
 * `?room=<room>` (default `demo`), `?db=<local database name>` (default `media`),
 * `?sync=<ws url>` (default `VITE_SYNC_URL`, else `ws://127.0.0.1:8080/sync`).
 */
const query = new URLSearchParams(location.search);

export const dbName = query.get('db') ?? 'media';
export const room = query.get('room') ?? 'demo';
export const syncUrl = query.get('sync') ?? import.meta.env.VITE_SYNC_URL ?? 'ws://127.0.0.1:8080/sync';
/** The sync server's HTTP base (dev endpoints such as seeding): `ws://h/sync` -> `http://h`. */
export const httpBase = syncUrl.replace(/^ws/, 'http').replace(/\/sync\/?$/, '');

/** localStorage keys are per database, so two demo databases in one browser don't mix. */
export const storageKey = (what: string): string => `synqlite-demo:${dbName}:${what}`;
