import type { WireError } from './protocol.js';

/**
 * The error every synqlite promise rejects with.
 *
 * `code` is stable across releases: SQLite's primary result code name (`SQLITE_CONSTRAINT`,
 * `SQLITE_ERROR`, ...) or one of synqlite's own: `BAD_PARAMS`, `STORAGE_UNAVAILABLE`, `CLOSED`,
 * `INVALID_ARGUMENT`, `TX_ABORTED`, `TX_FINISHED`, `OWNER_CHANGED`, `WORKER_FAILED`, `INTERNAL`,
 * the schema and replication codes (`SCHEMA_MISMATCH`, `SCHEMA_NAME_MISMATCH`,
 * `SCHEMA_NOT_IDEMPOTENT`, `AUTOMIGRATE_UNSUPPORTED`, `MIGRATION_NAME`, `MIGRATION_CHANGED`,
 * `MIGRATION_FAILED`, `CRR_UNSUPPORTED`, `INVALID_CHANGE`).
 *
 * A sync's `error` (see `Sync.onStatus`) uses the same codes, plus the server's:
 * - status `'error'` (the sync stopped; a retry cannot help): `UNAUTHORIZED` (token refused, also
 *   after one refresh of a token function, or no tab with a token function left), `FORBIDDEN`
 *   (a read-only token uploading, or a change the server's app refused), `SCHEMA_MISMATCH`,
 *   `SCHEMA_NAME_MISMATCH`, `INVALID_ROOM`, `PROTOCOL_VERSION`, `PROTOCOL_ERROR`;
 * - status `'offline'` (retried with backoff): `SERVER_BUSY` (a server cap was reached),
 *   `SITE_IN_USE` (an earlier connection of this database is still open on the server),
 *   `SHUTTING_DOWN`, `TOKEN_FAILED` (the token function rejected or took over 10 s), `INTERNAL`,
 *   any other code (`FRAME_TOO_LARGE`, ...), and lost connections (no error).
 * When the server marks an error frame `retryable` (or not), that flag decides instead of the
 * code, except for `UNAUTHORIZED`: a refused token is never retried as is.
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
