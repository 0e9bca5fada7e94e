//! A Set Retail 10 (Crystal) cash register database on the real PostgreSQL: the three tables ELQ's collector
//! reads (`ch_shift`, `ch_purchase`, `ch_position`), with the columns its query uses, in a throwaway database.

use sqlx::{Connection, PgConnection};

use crate::{Backend, TestDatabase};

const SCHEMA: &str = "
CREATE TABLE ch_shift (id BIGINT PRIMARY KEY, cashnum INTEGER NOT NULL, numshift BIGINT NOT NULL,
                       shiftopen TIMESTAMP NOT NULL);
CREATE TABLE ch_purchase (id BIGINT PRIMARY KEY, id_shift BIGINT NOT NULL REFERENCES ch_shift (id),
                          numberfield BIGINT NOT NULL, datecommit TIMESTAMP NOT NULL,
                          cashoperation INTEGER NOT NULL DEFAULT 0, operationtype BOOLEAN NOT NULL DEFAULT TRUE,
                          checkstatus INTEGER NOT NULL DEFAULT 0);
CREATE INDEX ch_purchase_commit ON ch_purchase (datecommit, id);
-- Quantities in thousandths (BIGINT) and a NUMERIC precision, as Set Retail stores them.
CREATE TABLE ch_position (id BIGSERIAL PRIMARY KEY, id_purchase BIGINT NOT NULL REFERENCES ch_purchase (id),
                          item VARCHAR(64) NOT NULL, qnty BIGINT NOT NULL, precision NUMERIC(10, 4) NOT NULL DEFAULT 1);
CREATE INDEX ch_position_purchase ON ch_position (id_purchase);
";

/// One purchase row and its positions. Times are the register's wall clock, `YYYY-MM-DD HH:MM:SS`.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub id: i64,
    pub shift: i64,
    pub check: i64,
    pub commit: String,
    pub cashoperation: i32,
    pub operationtype: bool,
    pub checkstatus: i32,
    /// `(item, qnty in thousandths or grams, precision)`.
    pub lines: Vec<(String, i64, f64)>,
}

impl Purchase {
    /// A normal sale: cash operation 0, not a return, not cancelled.
    pub fn sale(id: i64, shift: i64, check: i64, commit: &str, lines: &[(&str, i64, f64)]) -> Self {
        Purchase {
            id,
            shift,
            check,
            commit: commit.to_owned(),
            cashoperation: 0,
            operationtype: true,
            checkstatus: 0,
            lines: lines
                .iter()
                .map(|(item, qnty, precision)| ((*item).to_owned(), *qnty, *precision))
                .collect(),
        }
    }
}

/// A register database that exists as long as this value does.
#[derive(Debug)]
pub struct SetRetailDatabase {
    db: TestDatabase,
}

impl SetRetailDatabase {
    pub async fn new() -> Self {
        let db = TestDatabase::new(Backend::Postgres).await;
        let register = SetRetailDatabase { db };
        let mut connection = register.connect().await;
        sqlx::raw_sql(SCHEMA)
            .execute(&mut connection)
            .await
            .expect("create the Set Retail tables");
        register
    }

    pub fn url(&self) -> &str {
        self.db.url()
    }

    fn parsed(&self) -> reqwest::Url {
        reqwest::Url::parse(self.url()).expect("a PostgreSQL URL")
    }

    /// `host:port`, as main.json's `sql_server` may give it.
    pub fn server(&self) -> String {
        let url = self.parsed();
        format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(5432)
        )
    }

    pub fn database(&self) -> String {
        self.parsed().path().trim_start_matches('/').to_owned()
    }

    pub fn login(&self) -> String {
        self.parsed().username().to_owned()
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(self.url())
            .await
            .expect("connect to the register database")
    }

    pub async fn open_shift(&self, id: i64, cashnum: i32, numshift: i64, opened: &str) {
        let mut connection = self.connect().await;
        sqlx::query("INSERT INTO ch_shift (id, cashnum, numshift, shiftopen) VALUES ($1, $2, $3, $4::timestamp)")
            .bind(id)
            .bind(cashnum)
            .bind(numshift)
            .bind(opened)
            .execute(&mut connection)
            .await
            .expect("insert a shift");
        let _ = connection.close().await;
    }

    pub async fn insert(&self, purchases: &[Purchase]) {
        let mut connection = self.connect().await;
        let mut tx = connection.begin().await.expect("begin");
        for p in purchases {
            sqlx::query(
                "INSERT INTO ch_purchase (id, id_shift, numberfield, datecommit, cashoperation, operationtype, checkstatus)
                 VALUES ($1, $2, $3, $4::timestamp, $5, $6, $7)",
            )
            .bind(p.id)
            .bind(p.shift)
            .bind(p.check)
            .bind(&p.commit)
            .bind(p.cashoperation)
            .bind(p.operationtype)
            .bind(p.checkstatus)
            .execute(&mut *tx)
            .await
            .expect("insert a purchase");
            for (item, qnty, precision) in &p.lines {
                sqlx::query("INSERT INTO ch_position (id_purchase, item, qnty, precision) VALUES ($1, $2, $3, $4::float8)")
                    .bind(p.id)
                    .bind(item)
                    .bind(qnty)
                    .bind(precision)
                    .execute(&mut *tx)
                    .await
                    .expect("insert a position");
            }
        }
        tx.commit().await.expect("commit");
        let _ = connection.close().await;
    }

    /// `count` sales in `shift`, ids and receipt numbers from `first_id`, one millisecond apart from `first_commit`,
    /// each with one line of `item` × 1 (for load).
    pub async fn insert_many(
        &self,
        shift: i64,
        first_id: i64,
        count: i64,
        first_commit: &str,
        item: &str,
    ) {
        let mut connection = self.connect().await;
        sqlx::query(
            "INSERT INTO ch_purchase (id, id_shift, numberfield, datecommit)
             SELECT $1 + n, $2, $1 + n, $3::timestamp + n * interval '1 millisecond' FROM generate_series(0, $4 - 1) n",
        )
        .bind(first_id)
        .bind(shift)
        .bind(first_commit)
        .bind(count)
        .execute(&mut connection)
        .await
        .expect("insert purchases");
        sqlx::query(
            "INSERT INTO ch_position (id_purchase, item, qnty) SELECT $1 + n, $2, 1000 FROM generate_series(0, $3 - 1) n",
        )
        .bind(first_id)
        .bind(item)
        .bind(count)
        .execute(&mut connection)
        .await
        .expect("insert positions");
        let _ = connection.close().await;
    }

    /// Takes the register off the network, as far as clients can tell: new connections are refused and open
    /// ones are cut. [`Self::bring_up`] undoes it.
    pub async fn take_down(&self) {
        self.allow_connections(false).await;
    }

    pub async fn bring_up(&self) {
        self.allow_connections(true).await;
    }

    async fn allow_connections(&self, allow: bool) {
        let name = self.database();
        let mut url = self.parsed();
        url.set_path("/postgres");
        let mut admin = PgConnection::connect(url.as_str())
            .await
            .expect("connect to the maintenance database");
        let sql = format!(r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {allow}"#);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("change ALLOW_CONNECTIONS");
        if !allow {
            sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
                .bind(&name)
                .execute(&mut admin)
                .await
                .expect("cut the open connections");
        }
        let _ = admin.close().await;
    }
}
