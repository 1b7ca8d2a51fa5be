import { createContext, useContext } from 'solid-js';
import { openDatabase, type Database } from 'synqlite';
import { dbName } from './params';

/**
 * The schema: the repository's ordered migrations (`schema/<unix-ts>_<name>.sql`), the same files
 * the sync server applies, bundled by Vite as text and sorted by name (= timestamp order).
 */
const files = import.meta.glob<string>('../../schema/*.sql', { query: '?raw', import: 'default', eager: true });
export const migrations = Object.entries(files)
  .map(([path, sql]) => ({ name: path.slice(path.lastIndexOf('/') + 1), sql }))
  .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

/** Opens (creating and migrating) the media library database. */
export function openLibrary(): Promise<Database> {
  return openDatabase({ name: dbName, migrations });
}

const DbContext = createContext<Database>();

export const DbProvider = DbContext.Provider;

/** The open database, inside `<DbProvider>`. */
export function useDb(): Database {
  const db = useContext(DbContext);
  if (!db) throw new Error('useDb() outside <DbProvider>');
  return db;
}
