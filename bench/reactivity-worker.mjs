// The package's worker, unchanged, with change announcements time-stamped (see
// reactivity-stamp.mjs). Static imports run in order, so the patch is in place before the
// worker module creates its channels.
import './reactivity-stamp.mjs';
import '/pkg/dist/worker.js';
