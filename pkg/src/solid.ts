/**
 * Solid primitives for synqlite: `import { createQuery, createRow } from 'synqlite/solid'`.
 *
 * Both return a Solid **resource** (the same shape `createResource` returns, and built on it): call
 * it for the current value, read `.loading`, `.error`, `.state` (`'unresolved' | 'pending' |
 * 'ready' | 'refreshing' | 'errored'`) and `.latest`. So they work with `<Suspense>` and
 * `<ErrorBoundary>` like any resource: reading the value while the first load is pending suspends
 * the nearest `<Suspense>`, and reading it in the `'errored'` state throws the error (check
 * `.error` first, or let an `<ErrorBoundary>` catch it). The value follows the database after
 * that: every committed change, from this tab, another tab or sync, updates it, and the
 * subscription ends when the owner (component, `createRoot`) is disposed. Call them inside an
 * owner: outside one, nothing disposes them.
 *
 * Rows that did not change between two runs keep their object identity (and an unchanged
 * result keeps the same array), so `<For>` only re-renders the rows that changed.
 *
 * `solid-js` is a peer dependency of synqlite (1.6 or later); this entry is the only one that
 * imports it.
 *
 * ```ts
 * import { For, Show } from 'solid-js';
 * import type { Database } from 'synqlite';
 * import { createQuery } from 'synqlite/solid';
 *
 * function Songs(props: { db: Database }) {
 *   const songs = createQuery<{ id: number; title: string }>(props.db, 'SELECT id, title FROM songs ORDER BY title');
 *   return (
 *     <Show when={!songs.error} fallback={<p>{songs.error.message}</p>}>
 *       <ul><For each={songs()}>{(s) => <li>{s.title}</li>}</For></ul>
 *     </Show>
 *   );
 * }
 * ```
 * @packageDocumentation
 */
import {
  createComputed,
  createMemo,
  createResource,
  onCleanup,
  type Accessor,
  type InitializedResource,
  type Resource,
} from 'solid-js';
import type { Database, Row, SqlParams, SynqliteError, Unsubscribe } from './index.js';
import { coalesced } from './coalesce.js';

/** A value, or an accessor (signal, memo, prop getter) returning it; accessors are tracked. */
export type MaybeAccessor<T> = T | Accessor<T>;

/** What to leave out of a query: `null`, `undefined` or `false` pauses it (no subscription). */
export type Paused = null | undefined | false;

/** Options of {@link createQuery}. */
export interface QueryOptions<T> {
  /** Rows to show before the first run; the resource then starts `'ready'`, never `undefined`. */
  initialValue?: T[];
  /** A name for Solid's dev tools. */
  name?: string;
}

/** Options of {@link createRow}. */
export interface RowOptions {
  /** A name for Solid's dev tools. */
  name?: string;
}

const read = <T>(v: MaybeAccessor<T>): T => (typeof v === 'function' ? (v as Accessor<T>)() : v);

// ---- structural sharing -----------------------------------------------------------------------

function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  return false;
}

function sameRow(a: object, b: object): boolean {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i]!;
    if (k !== kb[i] || !sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

function valueKey(v: unknown): string {
  if (v === null || v === undefined) return 'n';
  if (v instanceof Uint8Array) return `b${v.join(',')}`;
  return `${(typeof v)[0]}${String(v)}`;
}

function rowKey(row: object): string {
  let key = '';
  for (const [k, v] of Object.entries(row)) key += `${k}\u0000${valueKey(v)}\u0001`;
  return key;
}

/**
 * `next`, re-using the objects of `prev` for rows whose columns are all equal (wherever they
 * moved), and `prev` itself when nothing changed.
 */
function shareRows<T extends object>(prev: readonly T[] | undefined, next: T[]): T[] {
  if (!prev || prev.length === 0) return next;
  if (prev.length === next.length && prev.every((r, i) => sameRow(r, next[i]!))) return prev as T[];
  const pool = new Map<string, T[]>();
  for (const r of prev) {
    const k = rowKey(r);
    const list = pool.get(k);
    if (list) list.push(r);
    else pool.set(k, [r]);
  }
  return next.map((r) => pool.get(rowKey(r))?.shift() ?? r);
}

// ---- a resource fed by a subscription ---------------------------------------------------------

type Emit<V> = (value: V) => void;
type Fail = (error: SynqliteError) => void;
type Push<V> = { value: V } | { error: SynqliteError };

const PUSH = Symbol('synqlite push');

/**
 * A resource whose value comes from `subscribe(key, emit, fail)`: the first emission resolves the
 * load (so the resource is pending, and suspends, until then); later ones replace the value. A new
 * key ends the old subscription and starts a new one; a paused key (or disposal) ends it.
 */
function createLiveResource<K, V>(
  key: Accessor<K | Paused>,
  subscribe: (key: K, emit: Emit<V>, fail: Fail) => Unsubscribe,
  share: (prev: V | undefined, next: V) => V,
  options: { initialValue?: V; name?: string },
): Resource<V> {
  let stop: Unsubscribe | null = null;
  let generation = 0;
  let last: V | undefined = options.initialValue;
  let pending: Push<V> | null = null;
  let refetch: (info?: typeof PUSH) => unknown = () => undefined;

  const end = (): void => {
    generation++;
    const s = stop;
    stop = null;
    s?.();
  };

  // Later emissions go through refetch: the fetcher returns (or throws) them synchronously, which
  // sets the value, the state and the error the way a load does (so an error clears on recovery).
  const deliver = (push: Push<V>, mine: number): void => {
    if (mine !== generation) return;
    pending = push;
    refetch(PUSH);
    // A load started in this very microtask makes Solid drop the refetch: try again after it.
    if (pending === push) queueMicrotask(() => pending === push && deliver(push, mine));
  };

  const [resource, actions] = createResource<V, K, typeof PUSH>(
    key as Accessor<K | Paused>,
    (k, info) => {
      if (info.refetching === PUSH) {
        const p = pending;
        pending = null;
        if (!p) return last as V;
        if ('error' in p) throw p.error;
        return p.value;
      }
      end();
      const mine = generation;
      return new Promise<V>((resolve, reject) => {
        let first = true;
        stop = subscribe(
          k,
          (value) => {
            if (mine !== generation) return;
            last = share(last, value);
            if (first) {
              first = false;
              resolve(last);
            } else deliver({ value: last }, mine);
          },
          (error) => {
            if (mine !== generation) return;
            if (first) {
              first = false;
              reject(error);
            } else deliver({ error }, mine);
          },
        );
      });
    },
    options as { initialValue?: V; name?: string },
  );
  refetch = actions.refetch;
  // Paused: no subscription (the resource keeps its last value).
  createComputed(() => {
    const k = key();
    if (k === null || k === undefined || k === false) end();
  });
  onCleanup(end);
  return resource;
}

// ---- keys ---------------------------------------------------------------------------------------

function sameParams(a: SqlParams | undefined, b: SqlParams | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k, i) => k === kb[i] && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

type QueryKey = readonly [sql: string, params: SqlParams | undefined];

/**
 * A live query as a Solid resource: runs `sql` now and again whenever a table it reads changes
 * (any tab, or sync), like {@link Database.liveQuery}, and stops when the owner is disposed.
 *
 * - `rows()`: the rows (`undefined` until the first run, unless `initialValue` is given; reading
 *   it suspends the nearest `<Suspense>` meanwhile, and throws when the state is `'errored'`).
 * - `rows.loading`: true until the first run, and while a changed `sql`/`params` loads.
 * - `rows.error`: the {@link SynqliteError} of the last run, if it failed (a later successful
 *   re-run clears it).
 * - `rows.state`, `rows.latest`: as for `createResource`.
 *
 * `sql` and `params` may be accessors: when what they return changes (params compared element
 * by element), the old subscription ends and the new query runs (`rows.loading` is true
 * meanwhile, and `rows()` keeps the previous rows; inside `<Suspense>`, make the change in
 * `startTransition` to keep showing them instead of the fallback). If `sql` returns `null`, `undefined` or
 * `false`, the query is paused. Rows that did not change keep their identity between runs.
 *
 * ```ts
 * import { createSignal, For, Show } from 'solid-js';
 * import type { Database } from 'synqlite';
 * import { createQuery } from 'synqlite/solid';
 *
 * function Search(props: { db: Database }) {
 *   const [term, setTerm] = createSignal('');
 *   const songs = createQuery<{ id: number; title: string }>(
 *     props.db,
 *     'SELECT id, title FROM songs WHERE title LIKE ? ORDER BY title LIMIT 50',
 *     () => [`%${term()}%`],
 *   );
 *   return (
 *     <>
 *       <input onInput={(e) => setTerm(e.currentTarget.value)} />
 *       <Show when={!songs.error} fallback={<p>Failed: {songs.error.message}</p>}>
 *         <ul classList={{ busy: songs.loading }}>
 *           <For each={songs()}>{(song) => <li>{song.title}</li>}</For>
 *         </ul>
 *       </Show>
 *     </>
 *   );
 * }
 * ```
 *
 * Without a component, e.g. in a store module:
 * ```ts
 * import { createEffect, createRoot } from 'solid-js';
 * const dispose = createRoot((dispose) => {
 *   const count = createQuery<{ n: number }>(db, 'SELECT count(*) AS n FROM songs', [], { initialValue: [] });
 *   createEffect(() => console.log(count()[0]?.n));
 *   return dispose;
 * });
 * dispose(); // ends the subscription
 * ```
 */
export function createQuery<T extends object = Row>(
  db: Database,
  sql: MaybeAccessor<string | Paused>,
  params: MaybeAccessor<SqlParams | undefined>,
  options: QueryOptions<T> & { initialValue: T[] },
): InitializedResource<T[]>;
export function createQuery<T extends object = Row>(
  db: Database,
  sql: MaybeAccessor<string | Paused>,
  params?: MaybeAccessor<SqlParams | undefined>,
  options?: QueryOptions<T>,
): Resource<T[]>;
export function createQuery<T extends object = Row>(
  db: Database,
  sql: MaybeAccessor<string | Paused>,
  params?: MaybeAccessor<SqlParams | undefined>,
  options: QueryOptions<T> = {},
): Resource<T[]> {
  const key = createMemo<QueryKey | Paused>(
    () => {
      const q = read(sql);
      if (q === null || q === undefined || q === false) return q;
      return [q, read(params)] as const;
    },
    undefined,
    { equals: (a, b) => a === b || (!!a && !!b && a[0] === b[0] && sameParams(a[1], b[1])) },
  );
  return createLiveResource<QueryKey, T[]>(
    key,
    ([q, p], emit, fail) => db.liveQuery<T>(q, p, emit, fail),
    shareRows,
    options,
  );
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

type RowKey = readonly [table: string, rowid: number | bigint];

/**
 * One row, by rowid, as a Solid resource: read with `SELECT * FROM <table> WHERE rowid = ?` now
 * and again each time {@link Database.onPoint} reports a change to it (any tab, or sync), until
 * the owner is disposed. Changes that do not touch the row cost nothing.
 *
 * - `row()`: the row, or `undefined` while the first read is pending (`row.loading`) and when no
 *   such row exists (deleted, or not yet inserted: it appears when it is).
 * - `row.loading`, `row.error`, `row.state`, `row.latest`: as for {@link createQuery}.
 *
 * `table` and `rowid` may be accessors; a `rowid` of `null`/`undefined`/`false` pauses it. For a
 * table with an `INTEGER PRIMARY KEY`, the rowid is that key. An unchanged re-read keeps the
 * same object.
 *
 * ```ts
 * import { Show } from 'solid-js';
 * import type { Database } from 'synqlite';
 * import { createRow } from 'synqlite/solid';
 *
 * function SongTitle(props: { db: Database; id: number }) {
 *   const song = createRow<{ id: number; title: string }>(props.db, 'songs', () => props.id);
 *   return (
 *     <Show when={!song.loading} fallback={<span>…</span>}>
 *       <Show when={song()} fallback={<span>(deleted)</span>}>{(s) => <span>{s().title}</span>}</Show>
 *     </Show>
 *   );
 * }
 * ```
 */
export function createRow<T extends object = Row>(
  db: Database,
  table: MaybeAccessor<string>,
  rowid: MaybeAccessor<number | bigint | Paused>,
  options: RowOptions = {},
): Resource<T | undefined> {
  const key = createMemo<RowKey | Paused>(
    () => {
      const id = read(rowid);
      if (id === null || id === undefined || id === false) return id;
      return [read(table), id] as const;
    },
    undefined,
    { equals: (a, b) => a === b || (!!a && !!b && a[0] === b[0] && a[1] === b[1]) },
  );
  return createLiveResource<RowKey, T | undefined>(
    key,
    ([t, id], emit, fail) => {
      const sql = `SELECT * FROM ${quoteIdent(t)} WHERE rowid = ?`;
      let stopped = false;
      // Coalesced like liveQuery: at most one read in flight, plus one after it.
      const run = coalesced(
        async () => {
          try {
            const rows = await db.query<T>(sql, [id]);
            if (!stopped) emit(rows[0]);
          } catch (e) {
            if (!stopped) fail(e as SynqliteError);
          }
        },
        () => stopped,
      );
      // Subscribe first, so a change that lands while the first read is in flight re-reads.
      const off = db.onPoint(t, id, run);
      run();
      return () => {
        stopped = true;
        off();
      };
    },
    (prev, next) => (prev && next && sameRow(prev, next) ? prev : next),
    options,
  );
}

