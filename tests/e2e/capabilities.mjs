// The README's capability table, built from one e2e run per engine (tests/e2e/run.mjs): each row
// is what the tests found there, from the facts they `record()` (harness.mjs) once their
// assertions passed, or the reason a test was skipped. A row a run did not reach says so.

/** Test cases of a node:test JUnit report: `{ name, status: 'pass'|'skip'|'fail', message }`. */
export function parseJunit(xml) {
  const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const cases = [];
  const re = /<testcase name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const body = m[3] ?? '';
    const skipped = /<skipped[^>]*message="([^"]*)"/.exec(body);
    const status = /<failure/.test(body) ? 'fail' : skipped || /<skipped/.test(body) ? 'skip' : 'pass';
    cases.push({ name: unescape(m[1]), status, message: skipped ? unescape(skipped[1]) : '' });
  }
  return cases;
}

/**
 * Rows: label, the fact keys whose values make the cell, and the name of the test that records
 * them (a cell without facts shows that test's skip reason, if it was skipped).
 */
const ROWS = [
  ['`storage: \'auto\'` picks', ['auto'], /^memory storage starts empty/],
  ['OPFS SAH pool', ['opfs'], /^opfs: write, reload/],
  ['Without the Storage API (WebKitGTK\'s own defaults)', ['no-storage-api'], /^without the Storage API/],
  ['IndexedDB: data survives a reload', ['reload-idb'], /^idb: write, reload/],
  ['IndexedDB: worker killed after a write resolved loses nothing', ['kill-idb'], /^idb: terminating the worker/],
  ['OPFS: worker killed after a write resolved loses nothing', ['kill-opfs'], /^opfs: terminating the worker/],
  ['IndexedDB: data survives a browser restart', ['idb-restart'], /^idb: data survives a browser restart/],
  ['Web Locks hand-over (owner tab closed / db closed)', ['handover-close-tab', 'handover-close-db'], /^two tabs read and write/],
  ['Cross-tab reactivity (onAny/onRange/live queries)', ['reactivity'], /^a write in one tab reaches both tabs/],
  ['Sync with the server (two browsers converge)', ['sync'], /^two browser contexts converge/],
  ['Sync: worker killed / tab closed mid-sync resumes exactly', ['sync-kill'], /^initial sync of 50k rows/],
  ['Sync hand-over between tabs', ['sync-tabs'], /^the sync runs in the owning tab/],
  ['`storage.persist()` (the persistence prompt)', ['persist'], /^storage\.persist\(\) settles/],
  ['Private window: what opens, data kept for the session', ['private'], /^private window/],
  ['Storage full on OPFS (1 / 16 MiB quota)', ['quota-opfs'], /^storage full on opfs/],
  ['Storage full on IndexedDB (1 / 16 MiB quota)', ['quota-idb'], /^storage full on idb/],
  ['`storage: \'auto\'` with a 1 MiB quota', ['quota-auto'], /^storage: 'auto' with a 1 MiB quota/],
  ['Demo app (two tabs, media, playlists)', ['demo'], /^deleting a song removes it/],
  ['Demo app syncing between two browsers', ['demo-sync'], /^a room seeded with 50k songs/],
];

const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The table as Markdown: one column per engine in `engines` (`perEngine[e] = { cases, facts }`). */
export function capabilityTable(perEngine, engines) {
  const lines = [];
  lines.push(`| | ${engines.join(' | ')} |`);
  lines.push(`|---|${engines.map(() => '---').join('|')}|`);
  for (const [label, keys, testName] of ROWS) {
    const cells = engines.map((e) => {
      const facts = perEngine[e]?.facts ?? [];
      const skipped = (perEngine[e]?.cases ?? []).find((c) => c.status === 'skip' && testName.test(c.name));
      const values = [];
      for (const key of keys) {
        const found = facts.filter((f) => f.key === key).map((f) => f.value);
        const last = found[found.length - 1];
        if (last !== undefined && !values.includes(last)) values.push(last);
      }
      if (values.length) return values.join('; ');
      return skipped ? `n/a: ${skipped.message}` : 'not shown (not run, or its test failed)';
    });
    lines.push(`| ${label} | ${cells.map(cell).join(' | ')} |`);
  }
  const totals = engines.map((e) => {
    const cases = perEngine[e]?.cases ?? [];
    const n = (s) => cases.filter((c) => c.status === s).length;
    return `${n('pass')} passed, ${n('skip')} skipped, ${n('fail')} failed`;
  });
  lines.push(`| e2e tests | ${totals.join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}
