/**
 * Storage persistence helpers: ask the browser to keep the app's data (OPFS and IndexedDB are
 * "best effort" storage that the browser may evict under pressure unless persisted).
 *
 * None of them throws: where the Storage API is missing they report `'unsupported'`.
 */

/** Whether the origin's storage is persistent. */
export type PersistenceState = 'persisted' | 'not-persisted' | 'unsupported';

/** Usage and quota in bytes, or `'unsupported'`. */
export type StorageEstimate = { usage: number; quota: number } | 'unsupported';

function manager(): StorageManager | undefined {
  return typeof navigator !== 'undefined' && navigator.storage ? navigator.storage : undefined;
}

/**
 * Persistence helpers.
 *
 * ```ts
 * import { storage } from 'synqlite';
 * if ((await storage.persisted()) === 'not-persisted') showKeepMyDataPrompt();
 * button.onclick = async () => console.log(await storage.persist());
 * const est = await storage.estimate();
 * ```
 */
export const storage = {
  /** Reports whether the browser has granted persistent storage. */
  async persisted(): Promise<PersistenceState> {
    const m = manager();
    if (!m?.persisted) return 'unsupported';
    try {
      return (await m.persisted()) ? 'persisted' : 'not-persisted';
    } catch {
      return 'unsupported';
    }
  },
  /** Asks for persistent storage (browsers may prompt or decide by engagement). */
  async persist(): Promise<PersistenceState> {
    const m = manager();
    if (!m?.persist) return 'unsupported';
    try {
      return (await m.persist()) ? 'persisted' : 'not-persisted';
    } catch {
      return 'unsupported';
    }
  },
  /** Bytes used and available to this origin. */
  async estimate(): Promise<StorageEstimate> {
    const m = manager();
    if (!m?.estimate) return 'unsupported';
    try {
      const e = await m.estimate();
      return { usage: e.usage ?? 0, quota: e.quota ?? 0 };
    } catch {
      return 'unsupported';
    }
  },
};
