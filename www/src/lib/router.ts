import { createSignal, onCleanup, type Accessor } from 'solid-js';

/** The screens, in navigation order. */
export const screens = [
  { id: 'library', label: 'Library' },
  { id: 'search', label: 'Search' },
  { id: 'playlists', label: 'Playlists' },
  { id: 'settings', label: 'Settings' },
  { id: 'sync', label: 'Sync' },
  { id: 'storage', label: 'Storage' },
] as const;

export type ScreenId = (typeof screens)[number]['id'];

/** Where the hash points: `#/<screen>[/<arg>]`, e.g. `#/playlists/<id>`. */
export interface Route {
  screen: ScreenId;
  arg: string | undefined;
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part; // a malformed %-escape: keep it as typed
  }
}

function parse(hash: string): Route {
  const [name, arg] = hash.replace(/^#\/?/, '').split('/').map(decode);
  const screen = screens.find((s) => s.id === name)?.id ?? 'library';
  return { screen, arg: arg || undefined };
}

/** The current route, following `location.hash` (back/forward work; the query string is kept). */
export function createRoute(): Accessor<Route> {
  const [route, setRoute] = createSignal(parse(location.hash), {
    equals: (a, b) => a.screen === b.screen && a.arg === b.arg,
  });
  const update = () => setRoute(parse(location.hash));
  window.addEventListener('hashchange', update);
  onCleanup(() => window.removeEventListener('hashchange', update));
  return route;
}

/** The href of a route. */
export const href = (screen: ScreenId, arg?: string): string => `#/${screen}${arg ? `/${encodeURIComponent(arg)}` : ''}`;
