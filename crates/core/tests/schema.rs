//! Schema versioning, natively and in wasm (dedicated worker): cryb64 vectors, declarative
//! schemas (apply, no-op, mismatch, automigrate, reset, idempotence), ordered migrations.

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use synqlite_core::crdt;
use synqlite_core::rusqlite::types::Value;
use synqlite_core::rusqlite::Connection;
use synqlite_core::schema::{
    apply_migrations, apply_schema, check_migrations, cryb64, schema_info, Migration, SchemaMode,
    SchemaOutcome,
};

fn open() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crdt::init(&mut c).unwrap();
    c
}

fn rows(c: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut stmt = c.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

fn i(v: i64) -> Value {
    Value::Integer(v)
}

fn columns(c: &Connection, table: &str) -> Vec<String> {
    rows(c, &format!("SELECT name FROM pragma_table_info('{table}')"))
        .into_iter()
        .map(|r| match &r[0] {
            Value::Text(s) => s.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn exists(c: &Connection, kind: &str, name: &str) -> bool {
    !rows(
        c,
        &format!("SELECT 1 FROM sqlite_master WHERE type = '{kind}' AND name = '{name}'"),
    )
    .is_empty()
}

const V1: &str = "CREATE TABLE IF NOT EXISTS songs (
  id INTEGER PRIMARY KEY NOT NULL,
  title TEXT NOT NULL DEFAULT '' CHECK (length(title) < 100),
  album TEXT
);
CREATE INDEX IF NOT EXISTS songs_title ON songs (title);
CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY NOT NULL, body TEXT);
SELECT crsql_as_crr('songs');";

const V2: &str = "CREATE TABLE IF NOT EXISTS songs (
  id INTEGER PRIMARY KEY NOT NULL,
  title TEXT NOT NULL DEFAULT '' CHECK (length(title) < 100),
  plays INTEGER NOT NULL DEFAULT 0 CHECK (plays >= 0),
  rating REAL
);
CREATE INDEX IF NOT EXISTS songs_title ON songs (title, plays);
CREATE TABLE IF NOT EXISTS artists (id TEXT PRIMARY KEY NOT NULL, name TEXT);
SELECT crsql_as_crr('songs');
SELECT crsql_as_crr('artists');";

/// The demo's schema (`schema/` at the repository root), compiled in so wasm can run it.
fn demo_schema() -> Vec<Migration> {
    macro_rules! file {
        ($name:literal) => {
            Migration::new($name, include_str!(concat!("../../../schema/", $name)))
        };
    }
    vec![
        file!("1718000000_create_songs.sql"),
        file!("1718000100_create_playlists.sql"),
        file!("1718000200_create_media_blobs.sql"),
        file!("1718000300_create_config.sql"),
    ]
}

macro_rules! both {
    ($(fn $name:ident() $body:block)*) => {$(
        #[cfg_attr(target_family = "wasm", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_family = "wasm"), test)]
        fn $name() $body
    )*};
}

both! {
    fn cryb64_vectors() {
        assert_eq!(cryb64(""), 5227514475777527171);
        assert_eq!(cryb64("a"), 5772536816540940545);
        assert_eq!(cryb64("hello"), -4634081719991045594);
        assert_eq!(cryb64("é😀"), -9078854739831091122);
    }

    fn new_db_gets_schema_and_version_then_noop() {
        let c = open();
        assert_eq!(apply_schema(&c, "init", V1, SchemaMode::Strict).unwrap(), SchemaOutcome::Applied);
        let info = schema_info(&c).unwrap();
        assert_eq!(info.name.as_deref(), Some("init"));
        assert_eq!(info.version, Some(cryb64(V1)));
        assert!(crdt::is_replicated(&c, "songs").unwrap());
        // Stored where vlcn stores it.
        assert_eq!(
            rows(&c, "SELECT value FROM crsql_master WHERE key IN ('schema_name', 'schema_version') ORDER BY key"),
            vec![vec![t("init")], vec![i(cryb64(V1))]]
        );
        c.execute_batch("INSERT INTO songs (id, title) VALUES (1, 'a')").unwrap();
        assert_eq!(apply_schema(&c, "init", V1, SchemaMode::Strict).unwrap(), SchemaOutcome::Unchanged);
        assert_eq!(apply_schema(&c, "init", V1, SchemaMode::Auto).unwrap().as_str(), "noop");
        assert_eq!(rows(&c, "SELECT count(*) FROM songs"), vec![vec![i(1)]]);
    }

    fn other_version_is_refused_naming_both_versions() {
        let c = open();
        apply_schema(&c, "init", V1, SchemaMode::Strict).unwrap();
        let e = apply_schema(&c, "init", V2, SchemaMode::Strict).unwrap_err();
        assert_eq!(e.code(), "SCHEMA_MISMATCH");
        let msg = e.to_string();
        assert!(msg.contains(&cryb64(V1).to_string()) && msg.contains(&cryb64(V2).to_string()), "{msg}");
        assert!(msg.contains("migrate: 'auto'"), "{msg}");
        assert_eq!(schema_info(&c).unwrap().version, Some(cryb64(V1)));
        assert!(exists(&c, "table", "notes"));
    }

    fn other_name_is_refused_unless_reset() {
        let c = open();
        apply_schema(&c, "init", V1, SchemaMode::Strict).unwrap();
        c.execute_batch("INSERT INTO songs (id, title) VALUES (1, 'a')").unwrap();
        for mode in [SchemaMode::Strict, SchemaMode::Auto] {
            let e = apply_schema(&c, "other", V2, mode).unwrap_err();
            assert_eq!(e.code(), "SCHEMA_NAME_MISMATCH");
            assert!(e.to_string().contains("reset"), "{e}");
        }
        let dv = crdt::db_version(&c).unwrap();
        assert_eq!(apply_schema(&c, "other", V2, SchemaMode::Reset).unwrap(), SchemaOutcome::Reset);
        assert!(!exists(&c, "table", "notes"));
        assert_eq!(rows(&c, "SELECT count(*) FROM songs__crsql_clock"), vec![vec![i(0)]], "old clocks gone");
        assert_eq!(rows(&c, "SELECT count(*) FROM songs"), vec![vec![i(0)]]);
        assert_eq!(columns(&c, "songs"), ["id", "title", "plays", "rating"]);
        assert_eq!(schema_info(&c).unwrap().name.as_deref(), Some("other"));
        assert!(crdt::is_replicated(&c, "artists").unwrap());
        // Peers remember our versions: they never go back.
        assert!(crdt::db_version(&c).unwrap() >= dv);
    }

    fn non_idempotent_schema_says_if_not_exists() {
        let c = open();
        let e = apply_schema(&c, "init", "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL);", SchemaMode::Strict).unwrap_err();
        assert_eq!(e.code(), "SCHEMA_NOT_IDEMPOTENT");
        assert!(e.to_string().contains("IF NOT EXISTS"), "{e}");
        assert!(!exists(&c, "table", "t"), "rolled back");
        assert_eq!(schema_info(&c).unwrap().name, None);
        // A broken schema reports SQLite's error with the schema's name.
        let e = apply_schema(&c, "init", "CREATE TABLE IF NOT EXISTS t (;", SchemaMode::Strict).unwrap_err();
        assert_eq!(e.code(), "SQLITE_ERROR");
        assert!(e.to_string().contains("schema \"init\""), "{e}");
    }

    fn automigrate_adds_drops_and_recreates() {
        let c = open();
        apply_schema(&c, "init", V1, SchemaMode::Strict).unwrap();
        c.execute_batch(
            "INSERT INTO songs (id, title, album) VALUES (1, 'Blue', 'x'), (2, 'Red', 'y');
             INSERT INTO notes VALUES ('n', 'gone');",
        )
        .unwrap();
        let out = apply_schema(&c, "init", V2, SchemaMode::Auto).unwrap();
        let SchemaOutcome::Migrated(report) = out else { panic!("{out:?}") };
        assert_eq!(report.dropped_tables, ["notes"]);
        assert_eq!(report.dropped_columns, [("songs".to_owned(), "album".to_owned())]);
        assert_eq!(
            report.added_columns,
            [("songs".to_owned(), "plays".to_owned()), ("songs".to_owned(), "rating".to_owned())]
        );
        assert_eq!(report.dropped_objects, ["songs_title"]);
        assert!(!exists(&c, "table", "notes"));
        assert!(exists(&c, "table", "artists"));
        assert_eq!(columns(&c, "songs"), ["id", "title", "plays", "rating"]);
        // Surviving data intact, new column has its default, its CHECK came along.
        assert_eq!(
            rows(&c, "SELECT id, title, plays, rating FROM songs ORDER BY id"),
            vec![vec![i(1), t("Blue"), i(0), Value::Null], vec![i(2), t("Red"), i(0), Value::Null]]
        );
        let e = c.execute_batch("UPDATE songs SET plays = -1").unwrap_err();
        assert!(e.to_string().contains("CHECK"), "{e}");
        // The changed index was re-created with its new definition.
        assert_eq!(
            rows(&c, "SELECT name FROM pragma_index_info('songs_title') ORDER BY seqno"),
            vec![vec![t("title")], vec![t("plays")]]
        );
        assert_eq!(schema_info(&c).unwrap().version, Some(cryb64(V2)));
        assert!(crdt::is_replicated(&c, "songs").unwrap());
        assert!(crdt::is_replicated(&c, "artists").unwrap());
        // Idempotent afterwards.
        assert_eq!(apply_schema(&c, "init", V2, SchemaMode::Auto).unwrap(), SchemaOutcome::Unchanged);
    }

    fn automigrate_refuses_primary_key_change_and_rolls_back() {
        let c = open();
        apply_schema(&c, "init", V1, SchemaMode::Strict).unwrap();
        let v3 = V1.replace("id INTEGER PRIMARY KEY NOT NULL,\n  title", "id INTEGER NOT NULL,\n  title")
            .replace("album TEXT\n", "album TEXT NOT NULL DEFAULT '', PRIMARY KEY (id, album)\n");
        let e = apply_schema(&c, "init", &v3, SchemaMode::Auto).unwrap_err();
        assert_eq!(e.code(), "AUTOMIGRATE_UNSUPPORTED");
        assert!(e.to_string().contains("primary key"), "{e}");
        assert_eq!(schema_info(&c).unwrap().version, Some(cryb64(V1)));
        assert!(exists(&c, "table", "notes"));
        // A failing column add rolls everything back too (NOT NULL without DEFAULT, on a
        // table with rows), including stopping replication.
        c.execute_batch("INSERT INTO songs (id, title) VALUES (1, 'a')").unwrap();
        let v4 = V1.replace("album TEXT\n", "album TEXT,\n  year INTEGER NOT NULL\n")
            .replace("SELECT crsql_as_crr('songs');", "");
        let e = apply_schema(&c, "init", &v4, SchemaMode::Auto).unwrap_err();
        assert!(e.to_string().contains("year"), "{e}");
        assert_eq!(columns(&c, "songs"), ["id", "title", "album"]);
        assert!(crdt::is_replicated(&c, "songs").unwrap());
        assert!(exists(&c, "index", "songs_title"));
        // The connection is still usable for an alter afterwards.
        assert!(matches!(apply_schema(&c, "init", V2, SchemaMode::Auto).unwrap(), SchemaOutcome::Migrated(_)));
    }

    fn automigrate_stops_replicating_when_asked() {
        let c = open();
        apply_schema(&c, "init", V1, SchemaMode::Strict).unwrap();
        let plain = V1.replace("SELECT crsql_as_crr('songs');", "");
        let SchemaOutcome::Migrated(r) = apply_schema(&c, "init", &plain, SchemaMode::Auto).unwrap() else { panic!() };
        assert_eq!(r.unreplicated, ["songs"]);
        assert!(!crdt::is_replicated(&c, "songs").unwrap());
        assert!(!exists(&c, "table", "songs__crsql_clock"));
    }

    fn replicated_table_keeps_syncing_across_automigration() {
        let a = open();
        let b = open();
        for c in [&a, &b] {
            apply_schema(c, "init", V1, SchemaMode::Strict).unwrap();
        }
        a.execute_batch("INSERT INTO songs (id, title, album) VALUES (1, 'Blue', 'x'), (2, 'Red', 'y')").unwrap();
        // Synced before the alter.
        crdt::apply_changes(&b, &crdt::changes_since(&a, 0, None).unwrap()).unwrap();
        // Written before the alter, not synced yet.
        a.execute_batch("UPDATE songs SET title = 'Green' WHERE id = 2; INSERT INTO songs (id, title) VALUES (3, 'Gold')").unwrap();
        b.execute_batch("INSERT INTO songs (id, title, album) VALUES (10, 'Bee', 'z')").unwrap();
        for c in [&a, &b] {
            assert!(matches!(apply_schema(c, "init", V2, SchemaMode::Auto).unwrap(), SchemaOutcome::Migrated(_)));
        }
        // Written after the alter, on both sides, including the new columns.
        a.execute_batch("UPDATE songs SET plays = 5 WHERE id = 1; INSERT INTO songs (id, title, rating) VALUES (4, 'Pink', 4.5);
                         INSERT INTO artists VALUES ('x', 'Ex')").unwrap();
        b.execute_batch("UPDATE songs SET plays = 7, rating = 1.0 WHERE id = 10").unwrap();
        // No change row names a dropped column.
        let from_a = crdt::changes_since(&a, 0, None).unwrap();
        let from_b = crdt::changes_since(&b, 0, None).unwrap();
        assert!(from_a.iter().chain(&from_b).all(|ch| &*ch.cid != "album"));
        crdt::apply_changes(&b, &from_a).unwrap();
        crdt::apply_changes(&a, &from_b).unwrap();
        let all = "SELECT id, title, plays, rating FROM songs ORDER BY id";
        assert_eq!(rows(&a, all), rows(&b, all));
        assert_eq!(
            rows(&a, all),
            vec![
                vec![i(1), t("Blue"), i(5), Value::Null],
                vec![i(2), t("Green"), i(0), Value::Null],
                vec![i(3), t("Gold"), i(0), Value::Null],
                vec![i(4), t("Pink"), i(0), Value::Real(4.5)],
                vec![i(10), t("Bee"), i(7), Value::Real(1.0)],
            ]
        );
        assert_eq!(rows(&b, "SELECT * FROM artists"), vec![vec![t("x"), t("Ex")]]);
        // A third peer that only ever saw V2 converges from scratch.
        let c = open();
        apply_schema(&c, "init", V2, SchemaMode::Strict).unwrap();
        crdt::apply_changes(&c, &crdt::changes_since(&a, 0, None).unwrap()).unwrap();
        assert_eq!(rows(&c, all), rows(&a, all));
    }

    fn migrations_apply_in_timestamp_order_and_skip_applied() {
        let c = open();
        let m = [
            Migration::new("1718000100_add_plays.sql", "CREATE TABLE IF NOT EXISTS plays (id INTEGER PRIMARY KEY NOT NULL, song INTEGER);"),
            Migration::new("1718000000_create_songs.sql", "CREATE TABLE IF NOT EXISTS songs (id INTEGER PRIMARY KEY NOT NULL, title TEXT); INSERT INTO songs VALUES (1, 'a');"),
        ];
        let ran = apply_migrations(&c, &m).unwrap();
        assert_eq!(ran, ["1718000000_create_songs.sql", "1718000100_add_plays.sql"]);
        assert!(apply_migrations(&c, &m).unwrap().is_empty(), "already applied: skipped (the INSERT would fail)");
        let info = schema_info(&c).unwrap();
        let names: Vec<&str> = info.migrations.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["1718000000_create_songs.sql", "1718000100_add_plays.sql"]);
        assert!(info.migrations[0].1.ends_with('Z') && info.migrations[0].1.len() >= 20, "{:?}", info.migrations[0].1);
        assert_eq!(
            rows(&c, "SELECT checksum FROM schema_versions ORDER BY rowid"),
            vec![vec![i(cryb64(&m[1].sql))], vec![i(cryb64(&m[0].sql))]]
        );
    }

    fn tampered_migration_is_refused() {
        let c = open();
        let mut m = vec![Migration::new("1_a.sql", "CREATE TABLE IF NOT EXISTS a (x);")];
        apply_migrations(&c, &m).unwrap();
        m[0].sql.push_str(" CREATE TABLE IF NOT EXISTS b (x);");
        m.push(Migration::new("2_c.sql", "CREATE TABLE c (x);"));
        let e = apply_migrations(&c, &m).unwrap_err();
        assert_eq!(e.code(), "MIGRATION_CHANGED");
        assert!(e.to_string().contains("1_a.sql"), "{e}");
        assert!(!exists(&c, "table", "b") && !exists(&c, "table", "c"), "nothing ran");
    }

    fn failing_migration_rolls_back_alone_and_next_call_continues() {
        let c = open();
        let good = Migration::new("1718000000_songs.sql", "CREATE TABLE songs (id INTEGER PRIMARY KEY NOT NULL, title TEXT);");
        let bad = Migration::new("1718000001_bad.sql", "CREATE TABLE half (x); INSERT INTO nope VALUES (1);");
        let later = Migration::new("1718000002_later.sql", "CREATE TABLE later (x);");
        let e = apply_migrations(&c, &[good.clone(), bad, later.clone()]).unwrap_err();
        assert_eq!(e.code(), "MIGRATION_FAILED");
        assert_eq!(e.extended_code(), Some("SQLITE_ERROR"));
        let msg = e.to_string();
        assert!(msg.contains("1718000001_bad.sql") && msg.contains("no such table: nope"), "{msg}");
        assert!(exists(&c, "table", "songs"), "the file before stays applied");
        assert!(!exists(&c, "table", "half"), "the failing file rolled back alone");
        assert!(!exists(&c, "table", "later"), "later files did not run");
        // Fixed file: the next call continues where it stopped (as after a crash between files).
        let fixed = Migration::new("1718000001_bad.sql", "CREATE TABLE half (x);");
        let ran = apply_migrations(&c, &[good, fixed, later]).unwrap();
        assert_eq!(ran, ["1718000001_bad.sql", "1718000002_later.sql"]);
    }

    fn crash_between_files_resumes_on_next_open() {
        // The first file committed, then the process died inside the second one.
        let c = open();
        let m1 = Migration::new("1_one.sql", "CREATE TABLE one (x);");
        let m2 = Migration::new("2_two.sql", "CREATE TABLE two (x);");
        apply_migrations(&c, std::slice::from_ref(&m1)).unwrap();
        // A half-done second file never reaches storage: its transaction was open.
        c.execute_batch("BEGIN; CREATE TABLE two (x);").unwrap();
        c.execute_batch("ROLLBACK").unwrap();
        let ran = apply_migrations(&c, &[m1, m2]).unwrap();
        assert_eq!(ran, ["2_two.sql"]);
        assert_eq!(schema_info(&c).unwrap().migrations.len(), 2);
    }

    fn bad_migration_names_are_refused() {
        let c = open();
        for name in ["create_songs.sql", "_x.sql", "17180000.sql", "1718000000_", "12a_x.sql"] {
            let e = apply_migrations(&c, &[Migration::new(name, "SELECT 1;")]).unwrap_err();
            assert_eq!(e.code(), "MIGRATION_NAME", "{name}");
            assert!(e.to_string().contains("<unix-timestamp>_<name>.sql"), "{e}");
        }
        let dup = [Migration::new("1_a.sql", ""), Migration::new("1_a.sql", "")];
        assert_eq!(apply_migrations(&c, &dup).unwrap_err().code(), "MIGRATION_NAME");
        assert!(!exists(&c, "table", "schema_versions"));
    }

    fn demo_schema_applies_syncs_and_enforces_its_checks() {
        let files = demo_schema();
        assert!(check_migrations(&files).unwrap().is_empty());
        let a = open();
        let b = open();
        for c in [&a, &b] {
            assert_eq!(apply_migrations(c, &files).unwrap().len(), files.len());
            for table in ["songs", "playlists", "playlist_items", "media_blobs", "config"] {
                assert!(crdt::is_replicated(c, table).unwrap(), "{table}");
            }
        }
        a.execute_batch(
            "INSERT INTO songs (id, title, artist, metadata) VALUES ('s1', 'Blue', 'Ex', '{\"artist\":\"Randomer\"}');
             INSERT INTO playlists (id, name) VALUES ('p1', 'Mix');
             INSERT INTO playlist_items (playlist_id, song_id, position) VALUES ('p1', 's1', 1.0);
             INSERT INTO media_blobs (sha256, mime, size, data) VALUES (hex(zeroblob(32)), 'image/png', 3, x'010203');
             UPDATE config SET theme = 'dark';",
        )
        .unwrap();
        // The JSON index serves the artist search.
        let plan = rows(&a, "EXPLAIN QUERY PLAN SELECT id FROM songs WHERE json_extract(metadata, '$.artist') = 'Randomer'");
        assert!(format!("{plan:?}").contains("songs_metadata_artist"), "{plan:?}");
        for bad in [
            "INSERT INTO songs (id, title) VALUES ('s2', '  ')",
            "INSERT INTO songs (id, metadata) VALUES ('s3', '{oops')",
            "INSERT INTO config (id) VALUES ('other')",
            "UPDATE config SET volume = 2",
            "INSERT INTO media_blobs (sha256) VALUES ('short')",
        ] {
            assert!(a.execute_batch(bad).is_err(), "{bad}");
        }
        crdt::apply_changes(&b, &crdt::changes_since(&a, 0, None).unwrap()).unwrap();
        for q in ["SELECT * FROM songs", "SELECT * FROM playlist_items", "SELECT * FROM media_blobs", "SELECT * FROM config"] {
            assert_eq!(rows(&a, q), rows(&b, q), "{q}");
        }
        assert_eq!(rows(&b, "SELECT theme FROM config"), vec![vec![t("dark")]]);
    }

    fn check_reports_names_order_and_idempotence() {
        let ok = [
            Migration::new("1_a.sql", "CREATE TABLE IF NOT EXISTS a (id TEXT PRIMARY KEY NOT NULL, v TEXT); SELECT crsql_as_crr('a');"),
            Migration::new("2_b.sql", "CREATE INDEX IF NOT EXISTS a_v ON a (v);"),
        ];
        assert!(check_migrations(&ok).unwrap().is_empty());
        let bad = [
            Migration::new("x.sql", ""),
            Migration::new("3_c.sql", "CREATE TABLE c (x);"),
            Migration::new("3_d.sql", "CREATE TABLE IF NOT EXISTS d (x);"),
            Migration::new("4_e.sql", "INSERT INTO nope VALUES (1);"),
            Migration::new("5_f.sql", "SELECT 1;"),
        ];
        let problems = check_migrations(&bad).unwrap();
        let files: Vec<&str> = problems.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(files, ["x.sql", "3_d.sql", "3_c.sql", "4_e.sql"], "{problems:?}");
        assert!(problems[1].message.contains("timestamp 3"), "{problems:?}");
        assert!(problems[2].message.contains("IF NOT EXISTS"), "{problems:?}");
        assert!(problems[3].message.contains("no such table"), "{problems:?}");
        // Name order must be run order: 999 sorts after 1000 by name.
        let lexical = [Migration::new("999_a.sql", "SELECT 1;"), Migration::new("1000_b.sql", "SELECT 1;")];
        let problems = check_migrations(&lexical).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("same number of digits"), "{problems:?}");
    }
}

/// A real crash between two files: the files on disk are copied while the second file's
/// transaction is open (what a killed process leaves: database plus hot journal); opening the
/// copy continues with the second file.
#[cfg(not(target_family = "wasm"))]
#[test]
fn crash_between_files_on_disk_resumes_on_next_open() {
    let dir = std::env::temp_dir();
    let tag = std::process::id();
    let path = dir.join(format!("synqlite-schema-crash-{tag}.db"));
    let copy = dir.join(format!("synqlite-schema-crash-{tag}-copy.db"));
    let journal = |p: &std::path::Path| p.with_extension("db-journal");
    for p in [&path, &copy] {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(journal(p));
    }
    let m1 = Migration::new("1_one.sql", "CREATE TABLE one (x);");
    let m2 = Migration::new(
        "2_two.sql",
        "CREATE TABLE two (x); INSERT INTO two VALUES (1);",
    );
    let c = Connection::open(&path).unwrap();
    apply_migrations(&c, std::slice::from_ref(&m1)).unwrap();
    c.execute_batch(
        "PRAGMA cache_size = 1; BEGIN IMMEDIATE; CREATE TABLE two (x); INSERT INTO two VALUES (1);",
    )
    .unwrap();
    std::fs::copy(&path, &copy).unwrap();
    if journal(&path).exists() {
        std::fs::copy(journal(&path), journal(&copy)).unwrap();
    }
    c.execute_batch("ROLLBACK").unwrap();
    drop(c);
    let c = Connection::open(&copy).unwrap();
    assert!(!exists(&c, "table", "two"));
    assert_eq!(apply_migrations(&c, &[m1, m2]).unwrap(), ["2_two.sql"]);
    assert_eq!(rows(&c, "SELECT count(*) FROM two"), vec![vec![i(1)]]);
    drop(c);
    for p in [&path, &copy] {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(journal(p));
    }
}
