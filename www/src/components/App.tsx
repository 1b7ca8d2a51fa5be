import { For, Match, Switch, createEffect } from 'solid-js';
import type { Database } from 'synqlite';
import { DbProvider } from '../db';
import { ConfigProvider, createConfig } from '../lib/config';
import { createPersistence, PersistenceProvider } from '../lib/persistence';
import { createRoute, href, screens } from '../lib/router';
import { createSyncController, SyncProvider } from '../lib/sync';
import { LibraryScreen } from './LibraryScreen';
import { PersistPrompt } from './PersistPrompt';
import { Player } from './Player';
import { PlaylistsScreen } from './PlaylistsScreen';
import { SearchScreen } from './SearchScreen';
import { SettingsScreen } from './SettingsScreen';
import { StorageScreen } from './StorageScreen';
import { SyncBadge, SyncScreen } from './SyncScreen';

/** The app shell: providers, theme, header with navigation, the current screen, the player. */
export function App(props: { db: Database }) {
  const config = createConfig(props.db);
  const sync = createSyncController(props.db);
  const persistence = createPersistence();
  const route = createRoute();

  // The theme follows the config row: a switch in any tab (or device) applies here at once.
  createEffect(() => {
    document.documentElement.dataset.theme = config.resolvedTheme();
    document.documentElement.dataset.themeSetting = config.row().theme;
  });

  return (
    <DbProvider value={props.db}>
      <ConfigProvider value={config}>
        <SyncProvider value={sync}>
          <PersistenceProvider value={persistence}>
            <header class="top">
              <h1>
                <span class="logo" aria-hidden="true">
                  ♫
                </span>{' '}
                Media library
              </h1>
              <SyncBadge />
            </header>
            <nav class="tabs" aria-label="screens">
              <For each={screens}>
                {(s) => (
                  <a href={href(s.id)} classList={{ active: route().screen === s.id }} aria-current={route().screen === s.id ? 'page' : undefined}>
                    {s.label}
                  </a>
                )}
              </For>
            </nav>
            <PersistPrompt />
            <main>
              <Switch>
                <Match when={route().screen === 'library'}>
                  <LibraryScreen />
                </Match>
                <Match when={route().screen === 'search'}>
                  <SearchScreen />
                </Match>
                <Match when={route().screen === 'playlists'}>
                  <PlaylistsScreen selected={route().arg} />
                </Match>
                <Match when={route().screen === 'settings'}>
                  <SettingsScreen />
                </Match>
                <Match when={route().screen === 'sync'}>
                  <SyncScreen />
                </Match>
                <Match when={route().screen === 'storage'}>
                  <StorageScreen />
                </Match>
              </Switch>
            </main>
            <Player />
          </PersistenceProvider>
        </SyncProvider>
      </ConfigProvider>
    </DbProvider>
  );
}
