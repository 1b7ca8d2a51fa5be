// Loaded before the synqlite worker by reactivity-worker.mjs: stamps each change announcement
// (the `{ from, source, txs }` message the owning worker posts on BroadcastChannel(<db name>)
// right after a commit returned and its changes were collected) with the worker's clock,
// `performance.timeOrigin + performance.now()`, as `announcedAt`. The clients ignore unknown
// fields; the benchmark reads it with a plain BroadcastChannel listener in the receiving tab.
const post = BroadcastChannel.prototype.postMessage;
BroadcastChannel.prototype.postMessage = function (message) {
  if (message && Array.isArray(message.txs)) message.announcedAt = performance.timeOrigin + performance.now();
  return post.call(this, message);
};
