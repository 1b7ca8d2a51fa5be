/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The sync server's WebSocket URL (scripts/demo sets it). */
  readonly VITE_SYNC_URL?: string;
}
