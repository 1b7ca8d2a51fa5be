import { Show } from 'solid-js';
import { usePersistence } from '../lib/persistence';

/** First-run banner while the browser may evict the data; "Not now" hides it for good. */
export function PersistPrompt() {
  const p = usePersistence();
  return (
    <Show when={p.promptVisible()}>
      <aside class="banner" role="dialog" aria-label="keep your data">
        <span>Your library lives in this browser. Ask the browser to keep it, so it is never cleared to free space?</span>
        <button type="button" onClick={() => p.persist()}>
          Keep my data
        </button>
        <button type="button" class="ghost" onClick={() => p.dismiss()}>
          Not now
        </button>
      </aside>
    </Show>
  );
}
