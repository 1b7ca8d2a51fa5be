// Backing worker for the anchor's main-thread API (sqlite3Worker1Promiser): installs the
// opfs-sahpool VFS, then starts the Worker1 message API, so `open` can pass `vfs: 'opfs-sahpool'`.
// (The package's own dist/sqlite3-worker1.mjs calls initWorker1API() without installing sahpool.)
// Loaded with `?opfs-disable&opfs-wl-disable` for the same reason as engine-sqlite-wasm.mjs.
import sqlite3InitModule from '/node_modules/@sqlite.org/sqlite-wasm/dist/index.mjs';

const sqlite3 = await sqlite3InitModule();
await sqlite3.installOpfsSAHPoolVfs({});
sqlite3.initWorker1API(); // posts 'worker1-ready', which resolves sqlite3Worker1Promiser()
