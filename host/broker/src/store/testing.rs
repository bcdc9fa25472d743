//! PostgreSQL databases for tests: each test creates its own, with a
//! random name, on the server at [`TEST_SERVER`] (trust authentication,
//! user `postgres`; `scripts/setup` installs and starts one), and drops it
//! afterwards.

use super::StoreError;
use super::postgres::{create_database, drop_database};

/// The test server's maintenance database, reached as `postgres`.
pub const TEST_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Overrides [`TEST_SERVER`] (another port or user).
pub const TEST_SERVER_ENV: &str = "LIFELINE_TEST_POSTGRES_URL";

/// A database that exists until this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    server: String,
    name: String,
}

fn server() -> String {
    std::env::var(TEST_SERVER_ENV).unwrap_or_else(|_| TEST_SERVER.to_string())
}

impl TestDatabase {
    /// Creates an empty database with a random name; the error says that
    /// PostgreSQL is needed and how to get it.
    pub fn create() -> Result<TestDatabase, String> {
        let server = server();
        let name = format!("lifeline_test_{:016x}", rand::random::<u64>());
        create_database(&server, &name).map_err(|e| explain(&server, &e))?;
        Ok(TestDatabase { server, name })
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        let base = self
            .server
            .rsplit_once('/')
            .map_or(self.server.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }

    /// `[store]` settings for a broker on this database.
    pub fn store_config(&self) -> lifeline_core::config::store::StoreConfig {
        lifeline_core::config::store::StoreConfig::Postgres(
            lifeline_core::config::store::PostgresConfig {
                url: lifeline_protocol::Secret::new(self.url()),
                password: None,
            },
        )
    }
}

fn explain(server: &str, e: &StoreError) -> String {
    format!(
        "these tests need PostgreSQL at {server} with trust authentication for user postgres \
         (run scripts/setup, or set {TEST_SERVER_ENV}): {e}"
    )
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Err(e) = drop_database(&self.server, &self.name) {
            eprintln!("cannot drop the test database {}: {e}", self.name);
        }
    }
}
