/**
 * Files in the database: content addressing (sha256) when storing, and object URLs when showing.
 *
 * Bytes live in `media_blobs` (a replicated table), so a cover or an audio file added in one
 * browser reaches the others through the sync like any row. To show one, the app reads the BLOB,
 * wraps it in a `Blob` and hands the element an object URL; that URL pins the bytes in memory
 * until revoked, so {@link createObjectUrl} revokes it as soon as the element stops showing it.
 */
import { createMemo, onCleanup, type Accessor } from 'solid-js';
import type { Database } from 'synqlite';
import { createQuery } from 'synqlite/solid';
import type { MediaBlob } from '../types';

/** Largest file the demo stores (sync frames carry whole change rows; keep them well below the server's 16 MiB frame limit). */
export const MAX_FILE_BYTES = 4 << 20;

/** Lower-case hex sha256 of `bytes` (Web Crypto: needs a secure context such as http://127.0.0.1). */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  if (!crypto.subtle) throw new Error('crypto.subtle is unavailable: open the demo on https:// or http://127.0.0.1');
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A file read for `media_blobs`. */
export interface StoredFile {
  sha256: string;
  mime: string;
  size: number;
  data: Uint8Array<ArrayBuffer>;
}

/** Reads `file` and hashes it; rejects files over {@link MAX_FILE_BYTES}. */
export async function readFile(file: File): Promise<StoredFile> {
  if (file.size > MAX_FILE_BYTES) {
    throw new Error(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; the demo stores files up to ${MAX_FILE_BYTES >> 20} MB`);
  }
  const data = new Uint8Array(await file.arrayBuffer());
  return { sha256: await sha256Hex(data), mime: file.type || 'application/octet-stream', size: data.length, data };
}

/** The duration of an audio file in whole seconds (0 if the browser can't tell within 3 s). */
export function audioSeconds(file: Blob): Promise<number> {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(file);
    const audio = new Audio();
    const done = (s: number) => {
      clearTimeout(timer);
      audio.removeAttribute('src');
      URL.revokeObjectURL(url);
      resolve(Number.isFinite(s) && s > 0 ? Math.round(s) : 0);
    };
    const timer = setTimeout(() => done(0), 3000);
    audio.preload = 'metadata';
    audio.onloadedmetadata = () => done(audio.duration);
    audio.onerror = () => done(0);
    audio.src = url;
  });
}

/**
 * The `media_blobs` row of `sha256`, live: `undefined` while it loads, when `sha256` is empty,
 * and when the row isn't there (yet: a synced song may arrive before its files).
 */
export function createMediaBlob(db: Database, sha256: Accessor<string | null | undefined>): Accessor<MediaBlob | undefined> {
  const rows = createQuery<MediaBlob>(
    db,
    () => (sha256() ? 'SELECT sha256, mime, data FROM media_blobs WHERE sha256 = ?' : null),
    () => [sha256()],
    { initialValue: [] },
  );
  // A paused or reloading query keeps its previous rows: only ever return the requested blob.
  return () => {
    const want = sha256();
    const row = rows()[0];
    return want && row?.sha256 === want && row.data ? row : undefined;
  };
}

/**
 * An object URL for the blob, created when it appears or changes and revoked when it changes,
 * disappears, or the calling component is disposed (Solid's `onCleanup` inside the memo).
 */
export function createObjectUrl(blob: Accessor<MediaBlob | undefined>): Accessor<string | undefined> {
  return createMemo(() => {
    const b = blob();
    if (!b?.data) return undefined;
    const url = URL.createObjectURL(new Blob([b.data as Uint8Array<ArrayBuffer>], { type: b.mime }));
    onCleanup(() => URL.revokeObjectURL(url));
    return url;
  });
}
