/**
 * Storage persistence (the seed's "keep my data" checks): whether the browser may evict the
 * origin's OPFS/IndexedDB data under pressure, and the one-time prompt asking to keep it.
 */
import { createContext, createSignal, useContext, type Accessor } from 'solid-js';
import { storage, type PersistenceState, type StorageEstimate } from 'synqlite';
import { storageKey } from '../params';

const DISMISSED = storageKey('persist-prompt-dismissed');

export interface Persistence {
  /** `undefined` until first checked. */
  state: Accessor<PersistenceState | undefined>;
  estimate: Accessor<StorageEstimate | undefined>;
  /** Whether the first-run prompt should show (not persisted, not dismissed). */
  promptVisible: Accessor<boolean>;
  refresh(): Promise<void>;
  /** Asks the browser to persist; returns the new state (browsers may decide without asking). */
  persist(): Promise<PersistenceState>;
  /** Hides the prompt for good (remembered in localStorage). */
  dismiss(): void;
}

export function createPersistence(): Persistence {
  const [state, setState] = createSignal<PersistenceState>();
  const [estimate, setEstimate] = createSignal<StorageEstimate>();
  const [dismissed, setDismissed] = createSignal(localStorage.getItem(DISMISSED) === '1');
  const refresh = async () => {
    const [s, e] = await Promise.all([storage.persisted(), storage.estimate()]);
    setState(s);
    setEstimate(e);
  };
  const dismiss = () => {
    localStorage.setItem(DISMISSED, '1');
    setDismissed(true);
  };
  void refresh();
  return {
    state,
    estimate,
    promptVisible: () => state() === 'not-persisted' && !dismissed(),
    refresh,
    async persist() {
      const s = await storage.persist();
      setState(s);
      // Asked once: whatever the browser answered, the prompt has done its job.
      dismiss();
      void refresh();
      return s;
    },
    dismiss,
  };
}

const PersistenceContext = createContext<Persistence>();
export const PersistenceProvider = PersistenceContext.Provider;

export function usePersistence(): Persistence {
  const p = useContext(PersistenceContext);
  if (!p) throw new Error('usePersistence() outside <PersistenceProvider>');
  return p;
}
