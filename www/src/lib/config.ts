/**
 * The `config` singleton row (id = 'config') as a live, app-wide value. Every tab and every synced
 * device shares it; a change anywhere re-renders every open tab (the theme applies at once).
 */
import { createContext, createSignal, onCleanup, useContext, type Accessor } from 'solid-js';
import type { Database } from 'synqlite';
import { createQuery } from 'synqlite/solid';
import type { ConfigRow, Theme } from '../types';

/** The schema's defaults, shown until the row is read. */
export const DEFAULT_CONFIG: ConfigRow = { theme: 'system', volume: 0.8, show_tips: 1 };

export interface Config {
  /** The current row (defaults until read). */
  row: Accessor<ConfigRow>;
  /** `theme` with `'system'` resolved through `prefers-color-scheme`. */
  resolvedTheme: Accessor<'light' | 'dark'>;
  /** Writes one column of the row; rejects with the database's error (e.g. a CHECK). */
  set<K extends keyof ConfigRow>(column: K, value: ConfigRow[K]): Promise<void>;
}

export function createConfig(db: Database): Config {
  const rows = createQuery<ConfigRow>(db, "SELECT theme, volume, show_tips FROM config WHERE id = 'config'", [], {
    initialValue: [],
  });
  const row = () => rows()[0] ?? DEFAULT_CONFIG;
  const media = window.matchMedia('(prefers-color-scheme: dark)');
  const [systemDark, setSystemDark] = createSignal(media.matches);
  const onMedia = (e: MediaQueryListEvent) => setSystemDark(e.matches);
  media.addEventListener('change', onMedia);
  onCleanup(() => media.removeEventListener('change', onMedia));
  const resolvedTheme = (): 'light' | 'dark' => {
    const t: Theme = row().theme;
    return t === 'system' ? (systemDark() ? 'dark' : 'light') : t;
  };
  const columns = new Set<keyof ConfigRow>(['theme', 'volume', 'show_tips']);
  return {
    row,
    resolvedTheme,
    async set(column, value) {
      if (!columns.has(column)) throw new Error(`no config column ${column}`);
      // Upsert: the row exists after the migrations, but a reset database may lack it.
      await db.exec(
        `INSERT INTO config (id, ${column}) VALUES ('config', ?) ON CONFLICT (id) DO UPDATE SET ${column} = excluded.${column}`,
        [value],
      );
    },
  };
}

const ConfigContext = createContext<Config>();
export const ConfigProvider = ConfigContext.Provider;

export function useConfig(): Config {
  const c = useContext(ConfigContext);
  if (!c) throw new Error('useConfig() outside <ConfigProvider>');
  return c;
}
