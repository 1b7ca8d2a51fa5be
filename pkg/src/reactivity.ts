/**
 * Change notifications on the main thread: the owning worker announces each committed transaction
 * on `BroadcastChannel(<database name>)`; every tab's client fans it out to `onAny`, `onRange` and
 * `onPoint` subscribers. Subscribers keep working while ownership moves between tabs, because
 * they listen to the channel, not to a particular worker.
 */
import type { ChangeMessage, WireTx } from './protocol.js';

/** What happened to a row. */
export type ChangeOp = 'insert' | 'update' | 'delete';

/** One changed row of a committed transaction. */
export interface RowChange {
  op: ChangeOp;
  table: string;
  rowid: number | bigint;
}

/** Who made the change: this tab, another tab, or the sync (merged remote changes). */
export type ChangeSource = 'local' | 'tab' | 'sync';

/** Called once per committed transaction with the rows that concern the subscription. */
export type ChangeListener = (changes: RowChange[], source: ChangeSource) => void;

/** Unsubscribes; calling it twice is harmless. */
export type Unsubscribe = () => void;

interface RangeSub {
  tables: ReadonlySet<string>;
  listener: ChangeListener;
}

function report(e: unknown): void {
  // A throwing subscriber must not stop the others.
  if (typeof reportError === 'function') reportError(e);
  else console.error(e);
}

const rowKey = (table: string, rowid: number | bigint): string => `${table}\u0000${String(rowid)}`;

/** @internal */
export class ChangeHub {
  private readonly any = new Set<ChangeListener>();
  private readonly byTable = new Map<string, Set<RangeSub>>();
  private readonly byRow = new Map<string, Set<ChangeListener>>();
  private readonly tables = new Set<(tables: readonly string[], source: ChangeSource) => void>();
  private readonly channel: BroadcastChannel;

  constructor(name: string, private readonly ownWorker: string) {
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = (e: MessageEvent<ChangeMessage>) => this.dispatch(e.data);
  }

  close(): void {
    this.channel.close();
    this.any.clear();
    this.byTable.clear();
    this.byRow.clear();
    this.tables.clear();
  }

  onAny(listener: ChangeListener): Unsubscribe {
    const l: ChangeListener = (c, s) => listener(c, s);
    this.any.add(l);
    return () => void this.any.delete(l);
  }

  onRange(tables: readonly string[], listener: ChangeListener): Unsubscribe {
    const sub: RangeSub = { tables: new Set(tables), listener };
    for (const t of sub.tables) {
      let set = this.byTable.get(t);
      if (!set) this.byTable.set(t, (set = new Set()));
      set.add(sub);
    }
    return () => {
      for (const t of sub.tables) {
        const set = this.byTable.get(t);
        set?.delete(sub);
        if (set?.size === 0) this.byTable.delete(t);
      }
    };
  }

  onPoint(table: string, rowid: number | bigint, listener: ChangeListener): Unsubscribe {
    const key = rowKey(table, rowid);
    const l: ChangeListener = (c, s) => listener(c, s);
    let set = this.byRow.get(key);
    if (!set) this.byRow.set(key, (set = new Set()));
    set.add(l);
    return () => {
      const current = this.byRow.get(key);
      current?.delete(l);
      if (current?.size === 0) this.byRow.delete(key);
    };
  }

  /**
   * @internal Calls `listener` once per committed transaction with the tables it changed (no
   * row objects are made for it): what live queries need.
   */
  onTables(listener: (tables: readonly string[], source: ChangeSource) => void): Unsubscribe {
    const l = (t: readonly string[], s: ChangeSource) => listener(t, s);
    this.tables.add(l);
    return () => void this.tables.delete(l);
  }

  private dispatch(msg: ChangeMessage): void {
    const source: ChangeSource = msg.source === 'sync' ? 'sync' : msg.from === this.ownWorker ? 'local' : 'tab';
    for (const tx of msg.txs) {
      for (const l of [...this.tables]) {
        try {
          l(tx.tables, source);
        } catch (e) {
          report(e);
        }
      }
      if (this.any.size === 0 && this.byTable.size === 0 && this.byRow.size === 0) continue;
      // Row objects are made on demand, once each: a big transaction nobody watches row by row
      // costs no objects.
      const made: (RowChange | undefined)[] = new Array(tx.ops.length);
      const row = (i: number): RowChange => (made[i] ??= rowAt(tx, i));
      if (this.any.size > 0) {
        const changes = Array.from({ length: tx.ops.length }, (_, i) => row(i));
        for (const l of [...this.any]) call(l, changes, source);
      }
      if (this.byTable.size > 0) {
        const subsOf = tx.tables.map((t) => this.byTable.get(t));
        if (subsOf.some((subs) => subs !== undefined)) {
          const buckets = new Map<RangeSub, RowChange[]>();
          for (let i = 0; i < tx.ops.length; i++) {
            const subs = subsOf[tx.table[i]!];
            if (!subs) continue;
            for (const sub of subs) {
              let bucket = buckets.get(sub);
              if (!bucket) buckets.set(sub, (bucket = []));
              bucket.push(row(i));
            }
          }
          for (const [sub, bucket] of buckets) call(sub.listener, bucket, source);
        }
      }
      if (this.byRow.size > 0) {
        for (let i = 0; i < tx.ops.length; i++) {
          const set = this.byRow.get(rowKey(tx.tables[tx.table[i]!]!, tx.rowids[i]!));
          if (set) for (const l of [...set]) call(l, [row(i)], source);
        }
      }
    }
  }
}

const OPS: readonly ChangeOp[] = ['insert', 'update', 'delete'];

/** Row `i` of a wire transaction; rowids within ±2^53 are numbers, as everywhere in the API. */
function rowAt(tx: WireTx, i: number): RowChange {
  const raw = tx.rowids[i]!;
  const rowid = typeof raw === 'bigint' && raw >= -MAX_SAFE && raw <= MAX_SAFE ? Number(raw) : raw;
  return { op: OPS[tx.ops[i]!]!, table: tx.tables[tx.table[i]!]!, rowid };
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function call(listener: ChangeListener, changes: RowChange[], source: ChangeSource): void {
  try {
    listener(changes, source);
  } catch (e) {
    report(e);
  }
}
