import { For, createSignal } from 'solid-js';
import { useConfig } from '../lib/config';
import { errorText } from '../lib/errors';
import type { ConfigRow, Theme } from '../types';
import { ErrorLine, Screen, Tip } from './common';

const THEMES: { value: Theme; label: string }[] = [
  { value: 'system', label: 'System' },
  { value: 'light', label: 'Light' },
  { value: 'dark', label: 'Dark' },
];

/**
 * Settings: the `config` singleton row. Writes go to the database only; every open tab (and, via
 * the sync, every device) re-renders from the row, so the theme switches everywhere at once.
 */
export function SettingsScreen() {
  const config = useConfig();
  const [error, setError] = createSignal<string>();
  const save = async <K extends keyof ConfigRow>(column: K, value: ConfigRow[K]) => {
    setError(undefined);
    try {
      await config.set(column, value);
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <Screen id="settings" title="Settings">
      <Tip>These settings are one replicated row (id = 'config'): change them here and watch another tab follow.</Tip>
      <div class="card settings">
        <fieldset class="segmented" aria-label="theme">
          <legend>Theme</legend>
          <For each={THEMES}>
            {(t) => (
              <label classList={{ checked: config.row().theme === t.value }}>
                <input
                  type="radio"
                  name="theme"
                  value={t.value}
                  checked={config.row().theme === t.value}
                  onChange={() => save('theme', t.value)}
                />
                {t.label}
              </label>
            )}
          </For>
        </fieldset>
        <label class="setting">
          <span>Volume</span>
          <input
            name="volume"
            type="range"
            min="0"
            max="1"
            step="0.05"
            value={config.row().volume}
            onChange={(e) => save('volume', Number(e.currentTarget.value))}
          />
          <output class="num">{Math.round(config.row().volume * 100)}%</output>
        </label>
        <label class="setting">
          <span>Show tips</span>
          <input
            name="show_tips"
            type="checkbox"
            checked={!!config.row().show_tips}
            onChange={(e) => save('show_tips', e.currentTarget.checked ? 1 : 0)}
          />
        </label>
        <ErrorLine error={error()} />
      </div>
    </Screen>
  );
}
