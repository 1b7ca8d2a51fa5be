import { Show, type JSX } from 'solid-js';
import { useConfig } from '../lib/config';

/** A hint for first-time users; hidden when Settings turns tips off. */
export function Tip(props: { children: JSX.Element }) {
  const config = useConfig();
  return (
    <Show when={config.row().show_tips}>
      <p class="tip">{props.children}</p>
    </Show>
  );
}

/** An error line (`CODE: message`), or nothing. */
export function ErrorLine(props: { error: string | undefined }) {
  return (
    <Show when={props.error}>
      <p class="error" role="alert">
        {props.error}
      </p>
    </Show>
  );
}

/** A screen's heading and content. */
export function Screen(props: { title: string; id: string; actions?: JSX.Element; children: JSX.Element }) {
  return (
    <section class="screen" data-screen={props.id} aria-labelledby={`${props.id}-title`}>
      <header class="screen-head">
        <h2 id={`${props.id}-title`}>{props.title}</h2>
        {props.actions}
      </header>
      {props.children}
    </section>
  );
}
