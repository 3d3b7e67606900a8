package org.libivr;

/**
 * A built-in database connector (ivr_db_options): {@code new DbOptions().url("sqlite:///x.db")}.
 * URLs: sqlite:///abs/path.db, sqlite:relative.db, sqlite::memory:,
 * postgresql://user@127.0.0.1:5432/db, redis://127.0.0.1:6379/0 (hosts are IP literals).
 */
public final class DbOptions {
  private String url;
  private String passwordSecret;
  private int poolSize = 2;
  private int connectTimeoutMs = 2000;
  private int maxWaiting = 1000;
  private boolean readOnly;

  /** Required. */
  public DbOptions url(String v) {
    url = v;
    return this;
  }

  /** The name of a secret holding the password ({@link Engine#setSecret}); default none. */
  public DbOptions passwordSecret(String v) {
    passwordSecret = v;
    return this;
  }

  /** Connections (PostgreSQL 1-16) or workers (SQLite 1-8); default 2. */
  public DbOptions poolSize(int v) {
    poolSize = v;
    return this;
  }

  /** One connection attempt; default 2000 ms. */
  public DbOptions connectTimeoutMs(int v) {
    connectTimeoutMs = v;
    return this;
  }

  /** Queries waiting for a connection before "busy"; default 1000. */
  public DbOptions maxWaiting(int v) {
    maxWaiting = v;
    return this;
  }

  /** SQLite: open read-only; default false. */
  public DbOptions readOnly(boolean v) {
    readOnly = v;
    return this;
  }

  public String url() {
    return url;
  }

  public String passwordSecret() {
    return passwordSecret;
  }

  public int poolSize() {
    return poolSize;
  }

  public int connectTimeoutMs() {
    return connectTimeoutMs;
  }

  public int maxWaiting() {
    return maxWaiting;
  }

  public boolean readOnly() {
    return readOnly;
  }
}
