/**
 * Runs an async task at most once at a time: a request while it runs schedules exactly one more
 * run after it, however many requests arrive. Live queries use it so a burst of commits causes one
 * query in flight plus one after it.
 * @internal
 */
export function coalesced(task: () => Promise<void>, stopped: () => boolean): () => void {
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await task();
      } while (again && !stopped());
    } finally {
      running = false;
    }
  };
  return () => void run();
}
