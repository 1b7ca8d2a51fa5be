import { Show } from 'solid-js';
import type { StorageKind } from 'synqlite';
import { createQuery } from 'synqlite/solid';
import { useDb } from '../db';
import { bytes, count } from '../lib/format';
import { usePersistence } from '../lib/persistence';
import { Screen, Tip } from './common';

const KINDS: Record<StorageKind, string> = {
  opfs: 'OPFS (Origin Private File System, SAH-pool VFS): fast and durable',
  idb: 'IndexedDB (durable fallback: this browser has no OPFS sync access handles)',
  memory: 'memory only: nothing survives a reload',
};

const STATES = {
  persisted: 'persisted: the browser will not evict this data',
  'not-persisted': 'best effort: the browser may evict this data when storage runs low',
  unsupported: 'unknown: this browser has no Storage API',
};

/** The storage panel: the VFS in use, persistence with the "keep my data" button, and usage/quota. */
export function StorageScreen() {
  const db = useDb();
  const p = usePersistence();
  const blobs = createQuery<{ n: number; size: number }>(db, 'SELECT count(*) AS n, coalesce(sum(size), 0) AS size FROM media_blobs', [], {
    initialValue: [],
  });
  void p.refresh();
  return (
    <Screen id="storage" title="Storage">
      <Tip>Local-first data is only as safe as the browser keeps it: ask it to persist the library.</Tip>
      <dl class="card facts">
        <dt>Database</dt>
        <dd>
          <span>
            “{db.name}” on <strong id="storage-kind">{db.storage}</strong>
            <span class="muted"> — {KINDS[db.storage]}</span>
          </span>
        </dd>
        <dt>Persistence</dt>
        <dd>
          <span>
            <strong id="storage-persisted">{p.state() ?? '…'}</strong>
            <Show when={p.state()}>{(s) => <span class="muted"> — {STATES[s()]}</span>}</Show>
          </span>
          <Show when={p.state() === 'not-persisted'}>
            <div>
              <button type="button" id="persist" onClick={() => p.persist()}>
                Keep my data
              </button>
            </div>
          </Show>
        </dd>
        <dt>Usage</dt>
        <dd id="storage-usage">
          <Show when={p.estimate()} fallback="…">
            {(e) => {
              const est = e();
              return est === 'unsupported' ? (
                'unknown (no Storage API)'
              ) : (
                <>
                  {bytes(est.usage)} of {bytes(est.quota)}
                  <meter min="0" max={est.quota || 1} value={est.usage} />
                </>
              );
            }}
          </Show>
          <button type="button" class="ghost" onClick={() => p.refresh()}>
            Refresh
          </button>
        </dd>
        <dt>Files</dt>
        <dd>
          <span>
            {count(blobs()[0]?.n ?? 0)} in <code>media_blobs</code>, {bytes(blobs()[0]?.size ?? 0)}
          </span>
        </dd>
      </dl>
    </Screen>
  );
}
