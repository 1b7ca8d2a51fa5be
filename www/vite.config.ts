import { defineConfig } from 'vite';

export default defineConfig({
  // The package ships its worker and wasm next to its JS (new URL(..., import.meta.url));
  // pre-bundling would move the JS away from them.
  optimizeDeps: { exclude: ['synqlite'] },
  build: { target: 'es2022' },
  worker: { format: 'es' },
});
