import { createSignal } from 'solid-js';

/** The song in the player (per tab): its id, or null. */
export const [nowPlaying, setNowPlaying] = createSignal<string | null>(null);
