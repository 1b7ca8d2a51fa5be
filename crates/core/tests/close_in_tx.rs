//! Closing a connection inside an open transaction: SQLite rolls the transaction back as it
//! closes and calls the rollback hook, which must still find the CRDT's hook state (and the
//! caller's callbacks) alive. With rusqlite's own hooks that state was freed first (it lives in
//! SQLite's client data, destroyed before the final rollback): the hook read freed memory,
//! which hung or crashed the process now and then.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use synqlite_core::crdt;
use synqlite_core::rusqlite::Connection;

#[cfg_attr(not(target_family = "wasm"), test)]
#[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
fn dropping_a_connection_mid_transaction_runs_the_rollback_hook_safely() {
    let rollbacks = Arc::new(AtomicUsize::new(0));
    for i in 0..200 {
        let mut c = Connection::open_in_memory().unwrap();
        crdt::init(&mut c).unwrap();
        let seen = rollbacks.clone();
        crdt::set_tx_hooks(
            &mut c,
            None,
            Some(Box::new(move || {
                seen.fetch_add(1, Ordering::SeqCst);
            })),
        )
        .unwrap();
        c.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, v TEXT);
             SELECT crsql_as_crr('t');
             BEGIN;
             INSERT INTO t VALUES (1, 'a');",
        )
        .unwrap();
        assert!(!c.is_autocommit());
        drop(c);
        assert_eq!(rollbacks.load(Ordering::SeqCst), i + 1, "close {i}");
    }
}
