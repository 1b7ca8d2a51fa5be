/**
 * The synqlite demo: a local-first media library (Vite + Solid). Opens the database (OPFS in a
 * worker, the schema/ migrations), then renders the app; an open failure is shown with its code.
 */
import { render } from 'solid-js/web';
import type { Database } from 'synqlite';
import { App } from './components/App';
import { openLibrary } from './db';
import { errorText } from './lib/errors';
import './styles.css';

declare global {
  interface Window {
    /** The open database, for poking at it from the dev tools console. */
    demo?: { db: Database };
  }
}

const root = document.getElementById('app')!;
try {
  const db = await openLibrary();
  window.demo = { db };
  root.replaceChildren();
  render(() => <App db={db} />, root);
} catch (e) {
  const p = document.createElement('p');
  p.className = 'error';
  p.setAttribute('role', 'alert');
  p.textContent = `Could not open the database: ${errorText(e)}`;
  root.replaceChildren(p);
}
