import type { WireError } from './protocol.js';

/**
 * The error every synqlite promise rejects with.
 *
 * `code` is stable across releases: SQLite's primary result code name (`SQLITE_CONSTRAINT`,
 * `SQLITE_ERROR`, ...) or one of synqlite's own: `BAD_PARAMS`, `STORAGE_UNAVAILABLE`, `CLOSED`,
 * `INVALID_ARGUMENT`, `TX_ABORTED`, `TX_FINISHED`, `OWNER_CHANGED`, `WORKER_FAILED`, `INTERNAL`.
 *
 * ```ts
 * try {
 *   await db.exec('INSERT INTO songs (id) VALUES (1)');
 * } catch (e) {
 *   if (e instanceof SynqliteError && e.code === 'SQLITE_CONSTRAINT') { ... }
 * }
 * ```
 */
export class SynqliteError extends Error {
  /** Stable error code. */
  readonly code: string;
  /** SQLite's extended result code name, e.g. `SQLITE_CONSTRAINT_UNIQUE`, for SQLite errors. */
  readonly extendedCode: string | undefined;

  constructor(code: string, message: string, extendedCode?: string) {
    super(message);
    this.name = 'SynqliteError';
    this.code = code;
    this.extendedCode = extendedCode;
  }

  /** @internal */
  static fromWire(e: WireError): SynqliteError {
    return new SynqliteError(e.code, e.message, e.extendedCode);
  }
}
