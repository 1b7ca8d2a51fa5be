/**
 * Playlist order: each entry has a REAL `position`; a move writes only the moved entry, at the
 * midpoint of its new neighbours, so concurrent moves on two devices merge without conflict.
 */

/**
 * The position for moving the entry at index `from` to index `to` of `positions` (ascending), or
 * `null` when the neighbours are too close for a midpoint (then renumber with {@link renumber}).
 */
export function positionForMove(positions: readonly number[], from: number, to: number): number | null {
  const rest = positions.filter((_, i) => i !== from);
  const before = rest[to - 1];
  const after = rest[to];
  let p: number;
  if (before === undefined && after === undefined) p = 1;
  else if (before === undefined) p = after! - 1;
  else if (after === undefined) p = before + 1;
  else p = (before + after) / 2;
  if ((before !== undefined && !(p > before)) || (after !== undefined && !(p < after))) return null;
  return p;
}

/** The position after the last entry. */
export function positionAtEnd(positions: readonly number[]): number {
  return positions.length ? Math.floor(Math.max(...positions)) + 1 : 1;
}

/** Fresh positions 1..n for `ids` in the given order. */
export function renumber<T>(ids: readonly T[]): [T, number][] {
  return ids.map((id, i) => [id, i + 1]);
}
