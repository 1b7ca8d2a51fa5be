import { Show } from 'solid-js';
import { useDb } from '../db';
import { createMediaBlob, createObjectUrl } from '../lib/media';

type Size = 'small' | 'large';

const Placeholder = (props: { size: Size }) => (
  <span class={`cover placeholder ${props.size}`} aria-hidden="true">
    ♪
  </span>
);

/**
 * A song's cover from `media_blobs`, or a placeholder when it has none (then no query runs, which
 * keeps long lists of cover-less songs cheap) or its blob is missing (not synced yet).
 */
export function Cover(props: { sha256: string | null | undefined; size?: Size }) {
  return (
    <Show when={props.sha256} fallback={<Placeholder size={props.size ?? 'small'} />}>
      {(sha) => <BlobCover sha256={sha()} size={props.size ?? 'small'} />}
    </Show>
  );
}

/** The image itself, through an object URL revoked when the cover changes or this goes away. */
function BlobCover(props: { sha256: string; size: Size }) {
  const db = useDb();
  const url = createObjectUrl(createMediaBlob(db, () => props.sha256));
  return (
    <Show when={url()} fallback={<Placeholder size={props.size} />}>
      {(src) => <img class={`cover ${props.size}`} src={src()} alt="cover" />}
    </Show>
  );
}
