import { SynqliteError } from 'synqlite';

/** `CODE: message` for a synqlite error (its stable code first), the message otherwise. */
export function errorText(e: unknown): string {
  if (e instanceof SynqliteError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}
