import { defineConfig } from 'vite';
import solid from 'vite-plugin-solid';

export default defineConfig({
  plugins: [solid()],
  // The package ships its worker and wasm next to its JS (new URL(..., import.meta.url));
  // pre-bundling would move the JS away from them.
  optimizeDeps: { exclude: ['synqlite'] },
  // The schema lives at the repository root (schema/*.sql, shared with the sync server).
  server: { fs: { allow: ['..'] } },
  build: { target: 'es2022' },
  worker: { format: 'es' },
});
