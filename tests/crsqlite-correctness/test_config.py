"""crsql_config_set / crsql_config_get, and their persistence in crsql_master."""

from harness import close, connect


def test_config_merge_equal_values(tmp_path):
    path = str(tmp_path / "config.db")
    db = connect(path)
    assert db.execute("SELECT crsql_config_set('merge-equal-values', 1)").fetchone() == (1,)
    db.commit()
    stored = "SELECT value FROM crsql_master WHERE key = 'config.merge-equal-values'"
    assert db.execute(stored).fetchone() == (1,)
    assert db.execute("SELECT crsql_config_get('merge-equal-values')").fetchone() == (1,)
    close(db)

    # A new connection reads the setting back from the database file.
    db = connect(path)
    assert db.execute(stored).fetchone() == (1,)
    assert db.execute("SELECT crsql_config_get('merge-equal-values')").fetchone() == (1,)
